"""Session and API token formats: random, parseable, and stored only as hashes."""

from __future__ import annotations

import hashlib

from dashboard.tokens import digest, new_api_token, new_csrf_token, new_session_token, parse_api_token


def test_api_token_format_and_hash() -> None:
    new = new_api_token()
    parsed = parse_api_token(new.token)
    assert parsed is not None and parsed[0] == new.id and len(parsed[1]) == 43
    assert new.secret_hash == hashlib.sha256(parsed[1].encode()).digest() == digest(parsed[1])
    assert new.token not in repr(new) and parsed[1] not in repr(new)


def test_tokens_are_distinct() -> None:
    assert len({new_api_token().token for _ in range(100)}) == 100
    assert len({new_session_token() for _ in range(100)} | {new_csrf_token() for _ in range(100)}) == 200


def test_malformed_api_tokens() -> None:
    good = new_api_token().token
    for bad in ("", "lw_", "lw_1234567_" + "a" * 43, "lw_ABCDEF12_" + "a" * 43, good + "a", good[:-1], "x" + good):
        assert parse_api_token(bad) is None, bad
