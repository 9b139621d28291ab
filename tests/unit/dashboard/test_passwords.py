"""argon2 hashing: verify, the dummy verify for unknown users, rehash, and the password rules."""

from __future__ import annotations

import pytest

from dashboard.passwords import MAX_LENGTH, MIN_LENGTH, Passwords, password_problem


@pytest.fixture(scope="module")
def cheap() -> Passwords:
    return Passwords("cheapest")


def test_hash_and_verify(cheap: Passwords) -> None:
    stored = cheap.hash("a long enough password")
    assert stored.startswith("$argon2id$")
    assert cheap.verify(stored, "a long enough password")
    assert not cheap.verify(stored, "a long enough passworD")
    assert not cheap.verify("not a hash", "a long enough password")
    assert not cheap.verify(stored, "x" * (MAX_LENGTH + 1))


def test_unknown_user_is_never_verified(cheap: Passwords) -> None:
    assert not cheap.verify(None, "")
    assert not cheap.verify(None, "anything at all")


def test_hashes_from_another_profile_verify_and_want_rehash(cheap: Passwords) -> None:
    strong = Passwords("rfc9106-low-memory")
    stored = strong.hash("a long enough password")
    assert cheap.verify(stored, "a long enough password") and cheap.needs_rehash(stored)
    assert not strong.needs_rehash(stored)


def test_unknown_profile() -> None:
    with pytest.raises(ValueError, match="unknown password profile"):
        Passwords("fast")


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("x" * (MIN_LENGTH - 1), "at least"),
        ("x" * (MAX_LENGTH + 1), "at most"),
        (" leading space pw", "white space"),
        ("x" * MIN_LENGTH, None),
        ("correct horse battery staple", None),
    ],
)
def test_password_rules(password: str, problem: str | None) -> None:
    found = password_problem(password)
    assert (found is None) if problem is None else (found is not None and problem in found)
