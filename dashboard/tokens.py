"""The formats of the secrets the API hands out, and how each is stored.

* Session tokens: 256 random bits (URL-safe base64) in the `lorawatch_session` cookie; the database
  keeps their sha256 only.
* CSRF tokens: 256 random bits, one per session, returned by login and `/api/v1/auth/me`.
* API tokens: `lw_<id>_<secret>`, an 8-hex-digit id that finds the row and a 256-bit secret whose
  sha256 is stored. A fast hash is right here: the secret is random, not a password, and it is
  checked on every request. The prefix makes a leaked token easy to find with secret scanners.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

SESSION_COOKIE = "lorawatch_session"
CSRF_HEADER = "X-CSRF-Token"
_API_TOKEN = re.compile(r"^lw_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


def digest(secret: str) -> bytes:
    """sha256 of a session token or an API token's secret: what the database stores."""
    return hashlib.sha256(secret.encode()).digest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class NewApiToken:
    """A token just made: `token` is shown once; `id` and `secret_hash` are stored."""

    id: str
    token: str = field(repr=False)
    secret_hash: bytes = field(repr=False)


def new_api_token() -> NewApiToken:
    token_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    return NewApiToken(token_id, f"lw_{token_id}_{secret}", digest(secret))


def parse_api_token(value: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed API token, else None."""
    match = _API_TOKEN.match(value)
    return (match[1], match[2]) if match else None
