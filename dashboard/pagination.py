"""Cursor pagination for every list route: keyset cursors, opaque to clients.

A cursor is URL-safe base64 of a JSON array: the sort key of the last item of the page just served
(e.g. `[id]` or `[time, id]`). The next page's query asks for keys after it (`WHERE (t, id) < (...)`),
so pages stay consistent while rows are added and each is an index range scan however deep. Cursors
are not signed: row-level security decides what a query can see, whatever a cursor says, and a
cursor that does not decode to the expected types is a 400.

    rows = query(..., after=decode_cursor(cursor, int), limit=limit + 1)   # one extra row: is there more?
    return page(rows, limit, key=lambda r: (r.id,))
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from dashboard.errors import ApiError

T = TypeVar("T")
KeyPart = int | str | datetime

MAX_LIMIT = 500
_MAX_CURSOR = 512
_BIGINT = 2**63

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]
Cursor = Annotated[
    str | None,
    Query(max_length=_MAX_CURSOR, description="`next_cursor` of the previous page; omit for the first page"),
]


class Page(BaseModel, Generic[T]):
    """One page of a list: `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(*key: KeyPart) -> str:
    values = [k.isoformat() if isinstance(k, datetime) else k for k in key]
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode()


def _invalid() -> ApiError:
    return ApiError(400, "invalid_cursor", "invalid cursor: pass a next_cursor exactly as a page returned it")


def _part(value: Any, kind: type) -> KeyPart:
    if kind is int and type(value) is int and -_BIGINT <= value < _BIGINT:
        return value
    if kind is str and isinstance(value, str) and "\x00" not in value:
        return value
    if kind is datetime and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _invalid() from None
        if parsed.tzinfo is not None:
            return parsed
    raise _invalid()


def decode_cursor(cursor: str | None, *kinds: type) -> tuple[Any, ...] | None:
    """The key a cursor holds, each part of the type given (int, str or datetime, time zone aware);
    None without a cursor; ApiError 400 for anything else."""
    if cursor is None:
        return None
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise _invalid() from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise _invalid()
    return tuple(_part(v, k) for v, k in zip(values, kinds, strict=True))


def page(rows: Sequence[T], limit: int, key: Callable[[T], tuple[KeyPart, ...]]) -> tuple[list[T], str | None]:
    """The first `limit` rows and the cursor after them; `rows` is the query's `limit + 1` rows, the
    extra one only saying whether another page exists."""
    items = list(rows[:limit])
    more = len(rows) > limit and items
    return items, encode_cursor(*key(items[-1])) if more else None
