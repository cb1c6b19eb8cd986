"""Encrypted image files under ``<data_dir>/media``.

Files are written to a temporary name and renamed, so a crash never leaves a half-written image
under a key the database knows. The file is written before the row that names it is committed,
so a crash (or a failed commit) between the two can leave a file no row names: the hourly
``purge_orphan_files`` sweep deletes those (:meth:`ImageStore.entries` lists them). Object
storage (S3-compatible) would implement the same three functions (and a listing) for a
multi-host deployment.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from server.core import crypto


class ImageStore:
    def __init__(self, root: Path, *, keys: str) -> None:
        self.root = root
        self._keys = keys

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key[:2] / key

    def save(self, data: bytes) -> str:
        """Encrypt and store ``data``; returns its new storage key (random, never reused)."""
        key = secrets.token_hex(16)
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # 0600: readable by the service user only (issue 13, finding 15), whatever the umask
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "wb") as fh:
            fh.write(crypto.encrypt(data, keys=self._keys))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return key

    def load(self, key: str) -> bytes:
        return crypto.decrypt(self._path(key).read_bytes(), keys=self._keys)

    def delete(self, key: str) -> bool:
        """Remove the file; True if it existed."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def entries(self) -> Iterator[tuple[str, float, Path]]:
        """Every file under the root as (key, modification time, path); a crashed write's
        temporary file appears with its ``.tmp`` name as the key (never a valid key)."""
        if not self.root.is_dir():
            return
        for shard in os.scandir(self.root):
            if not shard.is_dir(follow_symlinks=False) or len(shard.name) != 2:
                continue
            for entry in os.scandir(shard.path):
                if entry.is_file(follow_symlinks=False):
                    try:
                        mtime = entry.stat(follow_symlinks=False).st_mtime
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    yield entry.name, mtime, Path(entry.path)


def image_store(settings) -> ImageStore:
    return ImageStore(settings.data_dir / "media", keys=settings.encryption_key)
