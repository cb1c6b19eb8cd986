"""Replay defence: exact and perceptual hashes of every photo, and the comparison with old ones.

Two hashes per photo, stored by the server as tagged strings:

* ``sha256:<64 hex>`` — the file's bytes (an exact resend);
* ``phash:<16 hex>`` — 64-bit DCT perceptual hash of the whole upright image (a re-encoded,
  resized or re-exposed copy).

A new photo is a replay when its SHA-256 equals an earlier one, or its perceptual hash is within
``max_hamming`` bits of an earlier one. Untagged strings are accepted too: 64 hex characters are
read as ``sha256``, 16 as ``phash``.

Measured (docs/verification.md): re-encoded, half-size and brightened copies stay within 6 bits;
different photos of the same person were never closer than 8. A *cropped*, rotated or
screenshotted copy moves 14-34 bits and is not caught; a hash of the aligned face crop was tried
and dropped (copies moved up to 24 bits while different photos of one person came within 6).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ImageHashes:
    """Hashes of one photo: ``sha256`` (64 hex) and ``phash`` (16 hex)."""

    sha256: str
    phash: str

    def tagged(self) -> list[str]:
        """``["sha256:…", "phash:…"]`` — the strings the server stores."""
        return [f"sha256:{self.sha256}", f"phash:{self.phash}"]


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 (64 lowercase characters) of the raw bytes: photos here, model files in
    :func:`verification.face_models.read_model` (the package's one SHA-256 helper)."""
    return hashlib.sha256(data).hexdigest()


def phash64(image: np.ndarray) -> str:
    """64-bit DCT perceptual hash as 16 hex characters.

    ``image``: uint8 array (h, w) grey or (h, w, 3) BGR, any size. Steps: grey, resize to 32x32
    (area), 2-D DCT, keep the 8x8 lowest frequencies, set a bit where a coefficient exceeds their
    median (the DC term excluded from the median).
    """
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two 16-hex hashes (0-64)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def parse_hash(value: str) -> tuple[str, str] | None:
    """(tag, hex) from a stored hash string, or ``None`` when it is not one we understand."""
    value = str(value).strip().lower()
    tag, sep, hexpart = value.partition(":")
    if not sep:
        tag, hexpart = {64: "sha256", 16: "phash"}.get(len(value), ""), value
    want = {"sha256": 64, "phash": 16}.get(tag)
    if want is None or len(hexpart) != want:
        return None
    try:
        int(hexpart, 16)
    except ValueError:
        return None
    return tag, hexpart


def find_replay(
    current: ImageHashes, previous: Iterable[str], *, max_hamming: int
) -> tuple[str, int] | None:
    """The first earlier hash ``current`` repeats, with its bit distance; ``None`` if fresh.

    ``previous``: stored hash strings (tagged or bare); unparseable ones are ignored.
    ``max_hamming``: largest bit distance (0-64) of two perceptual hashes of the same photo.
    """
    for raw in previous:
        parsed = parse_hash(raw)
        if parsed is None:
            continue
        tag, value = parsed
        if tag == "sha256" and value == current.sha256:
            return f"sha256:{value}", 0
        if tag == "phash":
            d = hamming(current.phash, value)
            if d <= max_hamming:
                return f"phash:{value}", d
    return None
