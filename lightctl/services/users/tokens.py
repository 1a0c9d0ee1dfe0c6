"""The random values that stand for a caller (a session's cookie, an API token, the local
credential) and the digests the records keep of them. They carry 256 bits: a fast digest
(SHA-256) is all a stored copy needs, unlike a password."""

from __future__ import annotations

import hashlib
import secrets

API_TOKEN_PREFIX = "lct_"
"""API tokens start with this, so that a secret scanner (and a person) can tell one."""


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
