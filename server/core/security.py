"""Password hashing (argon2id) and hashing of high-entropy tokens and codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong password or a corrupt hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token(nbytes: int = 32) -> str:
    """An opaque bearer token (URL-safe, ``nbytes`` of randomness)."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str, *, pepper: str = "") -> str:
    """SHA-256 of a high-entropy token (keyed with ``pepper`` when given). Tokens are looked up
    by this digest; argon2 would be pointless for 256-bit random values and too slow per request."""
    if pepper:
        return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(token.encode()).hexdigest()


#: Domain of the key that activation codes are hashed with (derived from the secret key).
_CODE_KEY_LABEL = b"isocheck activation codes v1"


def code_digest(code: str, *, secret: str) -> str:
    """Keyed hash of an activation code: HMAC-SHA256 under a key derived from the server's secret
    (``ISOCHECK_SECRET_KEY``). A code has about 50 bits and lives 72 h: a plain SHA-256 in a
    copied database is cracked by enumeration; without the server secret this one is not."""
    if not secret:
        raise ValueError("activation codes need the server secret (ISOCHECK_SECRET_KEY)")
    key = hmac.new(secret.encode(), _CODE_KEY_LABEL, hashlib.sha256).hexdigest()
    return token_digest(code, pepper=key)


def new_password(length: int = 16) -> str:
    """A random password for accounts the system creates (printed once)."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
