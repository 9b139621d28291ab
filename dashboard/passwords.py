"""Password hashing with argon2id (argon2-cffi), and the password rules.

The default parameters are RFC 9106's low-memory profile (t=3, m=64 MiB, p=4: about 0.3 s a hash on
this project's machines); tests select `cheapest`, which protects nothing. A hash records its own
parameters, so hashes made under one profile verify under another, and a login rehashes a stored
hash whose parameters are not the current ones.

Unknown users are verified against a dummy hash made with the same parameters, so a login takes as
long whether or not the user exists.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from dashboard.config import PASSWORD_PROFILES

MIN_LENGTH = 12
#: Longer passwords are refused before hashing: argon2 would take them, but nothing needs more.
MAX_LENGTH = 1024

_PARAMETERS = {
    "rfc9106-low-memory": profiles.RFC_9106_LOW_MEMORY,
    "cheapest": profiles.CHEAPEST,
}
assert set(_PARAMETERS) == set(PASSWORD_PROFILES)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None. Length is what matters (NIST SP 800-63B): no
    composition rules, which only make passwords shorter and more predictable."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    if password.strip() != password:
        return "the password must not start or end with white space"
    return None


class Passwords:
    """Hash and verify passwords with one parameter profile."""

    def __init__(self, profile: str = "rfc9106-low-memory") -> None:
        if profile not in _PARAMETERS:
            msg = f"unknown password profile {profile!r} (one of {', '.join(PASSWORD_PROFILES)})"
            raise ValueError(msg)
        params = _PARAMETERS[profile]
        assert params.type is Type.ID
        self._hasher = PasswordHasher.from_parameters(params)
        self._dummy = self._hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True iff `password` matches `stored`; with no stored hash (unknown user), the dummy hash is
        verified instead, and the answer is False."""
        if len(password) > MAX_LENGTH:
            return False
        try:
            ok = self._hasher.verify(stored if stored is not None else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
