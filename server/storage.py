"""Encrypted image files under ``<data_dir>/media``.

Files are written to a temporary name and renamed, so a crash never leaves a half-written image
under a key the database knows. Object storage (S3-compatible) would implement the same three
functions for a multi-host deployment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from server import crypto


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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
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


def image_store(settings) -> ImageStore:
    return ImageStore(settings.data_dir / "media", keys=settings.encryption_key)
