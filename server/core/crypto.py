"""Encryption at rest for biometric data (images, face templates).

``ISOCHECK_ENCRYPTION_KEY`` holds one or more comma-separated Fernet keys (AES-128-CBC +
HMAC-SHA256): the first encrypts, all decrypt, so a key can be rotated by prepending a new one.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(RuntimeError):
    """Stored data could not be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _fernet(keys: str) -> MultiFernet:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ValueError("no encryption key configured (ISOCHECK_ENCRYPTION_KEY)")
    return MultiFernet([Fernet(k.encode()) for k in parts])


def encrypt(data: bytes, *, keys: str) -> bytes:
    return _fernet(keys).encrypt(data)


def decrypt(token: bytes, *, keys: str) -> bytes:
    try:
        return _fernet(keys).decrypt(token)
    except InvalidToken as exc:
        raise DecryptionError("stored data cannot be decrypted with the configured keys") from exc
