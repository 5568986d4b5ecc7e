"""Passwords, API keys, signed URLs and secret encryption, all keyed by the secret key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_hasher = PasswordHasher()
# A fixed hash to verify against when the email is unknown, so timing does not tell.
_DUMMY_HASH = _hasher.hash("talkturo-dummy-password")

API_KEY_PREFIX = "tk_"
SIGNED_URL_TTL_S = 15 * 60


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; constant work when the user does not exist."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (the key shown once, its visible prefix, its stored hash)."""
    public = secrets.token_hex(4)
    key = f"{API_KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    return key, f"{API_KEY_PREFIX}{public}", hash_api_key(key)


def hash_api_key(key: str) -> str:
    """The stored form of an API key (keys are long and random: SHA-256 suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _derived(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def session_secret(secret_key: str) -> bytes:
    """The 32-byte key of the encrypted session cookie."""
    return _derived(secret_key, "session")


def csrf_secret(secret_key: str) -> str:
    """The secret of CSRF tokens."""
    return _derived(secret_key, "csrf").hex()


def sign_path(secret_key: str, path: str, expires: int) -> str:
    """The HMAC signature of ``path`` valid until the unix time ``expires``."""
    msg = f"{path}\n{expires}".encode()
    digest = hmac.new(_derived(secret_key, "url"), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_query_until(secret_key: str, path: str, ttl_s: int) -> tuple[str, int]:
    """``expires=…&signature=…`` for ``path``, valid for ``ttl_s`` seconds, and the expiry."""
    expires = int(time.time()) + ttl_s
    return f"expires={expires}&signature={sign_path(secret_key, path, expires)}", expires


def signed_query(secret_key: str, path: str, ttl_s: int = SIGNED_URL_TTL_S) -> str:
    """``expires=…&signature=…`` for ``path``, valid for ``ttl_s`` seconds."""
    return signed_query_until(secret_key, path, ttl_s)[0]


def check_signature(secret_key: str, path: str, expires: str, signature: str) -> bool:
    """Whether the signature is genuine and not expired."""
    try:
        exp = int(expires)
    except ValueError:
        return False
    if exp < time.time():
        return False
    return hmac.compare_digest(sign_path(secret_key, path, exp), signature)


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derived(secret_key, "secrets-at-rest")))


def encrypt_secret(secret_key: str, plaintext: str) -> str:
    """Encrypt a customer secret (such as a bucket key) for storage."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt_secret(secret_key: str, token: str) -> str:
    """Decrypt what :func:`encrypt_secret` stored; raises ValueError if it was altered."""
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored secret cannot be decrypted with this secret key") from None
