"""One device's readings: raw rows, or min/max/mean per bucket and quantity, as JSON pages or CSV.

`GET /devices/{device_id}/readings` pages JSON; `GET /devices/{device_id}/readings.csv` is the same
data and the same parameters as CSV (a route of its own, so each declares one media type), its next
page's cursor in the `X-Next-Cursor` header. The range is [start, end), by default the 24 hours up to
now; an empty or inverted range is an empty page, not an error.

Every request's cost is capped, whatever the range: a raw page is at most `limit` rows (an index range
scan), a bucketed page covers at most `limit` buckets of time (range x resolution per page) and
`next_cursor` carries on from where it ended. A page of buckets can hold fewer than `limit`, even none,
when the device was silent: follow `next_cursor` until it is null.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from dashboard.api.devices import (
    AllowingRoute,
    ApplicationQuery,
    CsvResponse,
    DeviceIdPath,
    audit_care,
    csv_responses,
    find_device,
)
from dashboard.deps import Acting
from dashboard.errors import ErrorBody
from dashboard.pagination import MAX_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor
from dashboard.params import Timestamp
from store import reading_series
from store.device_views import DeviceView
from store.reading_series import Bucket
from store.records import READING_COLUMNS, Reading

router = APIRouter(prefix="/api/v1", tags=["readings"], route_class=AllowingRoute)

BucketWidth = Literal["15m", "1h", "1d"]
WIDTHS: dict[str, timedelta] = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
DEFAULT_RANGE = timedelta(hours=24)
#: A CSV page may be longer than a JSON one: a month of one device's readings in one file.
MAX_CSV_LIMIT = 50_000
_MIN_TIME = datetime.min.replace(tzinfo=UTC)
_CONFLICT = {"model": ErrorBody, "description": "The device_id is in several applications (pass application_id)"}

Start = Annotated[Timestamp | None, Query(description="from this time (inclusive); default: end - 24 h")]
End = Annotated[Timestamp | None, Query(description="to this time (exclusive); default: now")]
BucketQuery = Annotated[
    BucketWidth | None, Query(description="min/max/mean per bucket of this width (UTC-aligned); omit for raw rows")
]
CsvLimit = Annotated[int, Query(ge=1, le=MAX_CSV_LIMIT, description=f"rows per file, 1 to {MAX_CSV_LIMIT}")]


class ReadingOut(BaseModel):
    """One reading: its time and the quantities it has (a name per `readings` column; absent = none)."""

    time: AwareDatetime
    values: dict[str, bool | int | float]


class StatsOut(BaseModel):
    """One quantity over one bucket; for a boolean, values count as 0 and 1 (mean: the share true)."""

    min: float
    max: float
    mean: float
    count: int


class BucketOut(BaseModel):
    """The readings of [start, start + bucket) within the range: how many, and per quantity its stats."""

    start: AwareDatetime
    readings: int
    quantities: dict[str, StatsOut]


@dataclass(frozen=True, slots=True)
class Window:
    """What one page covers: [start, end), and where the next page starts (None: this is the last)."""

    start: datetime
    end: datetime
    next_start: datetime | None


def requested_range(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) with the defaults: end now, start 24 h before end (never before year 1)."""
    end = end or now
    if start is None:
        start = end - DEFAULT_RANGE if end - _MIN_TIME > DEFAULT_RANGE else _MIN_TIME
    return start, end


def bucket_window(start: datetime, end: datetime, width: timedelta, after: datetime | None, limit: int) -> Window:
    """The page of at most `limit` buckets from `after` (a cursor: a bucket boundary) or `start`.
    Pages end on bucket boundaries, so no bucket is split between two pages."""
    begin = max(start, after) if after is not None else start
    if begin >= end:
        return Window(begin, begin, None)
    first = reading_series.floor(begin, width)
    span = width * limit
    if end - first <= span:
        return Window(begin, end, None)
    stop = first + span
    return Window(begin, stop, stop)


def reading_out(reading: Reading) -> ReadingOut:
    values = {c: v for c in READING_COLUMNS if (v := getattr(reading, c)) is not None}
    return ReadingOut(time=reading.time, values=values)


def bucket_out(bucket: Bucket) -> BucketOut:
    return BucketOut(
        start=bucket.start,
        readings=bucket.readings,
        quantities={
            q: StatsOut(min=s.min, max=s.max, mean=s.mean, count=s.count) for q, s in bucket.quantities.items()
        },
    )


@dataclass(frozen=True, slots=True)
class _Rows:
    device: DeviceView
    raw: list[Reading]
    buckets: list[Bucket]
    next_cursor: str | None


def _read(
    ctx: Acting,
    device_id: str,
    application_id: str | None,
    start: datetime | None,
    end: datetime | None,
    bucket: str | None,
    cursor: str | None,
    limit: int,
    action: str,
) -> _Rows:
    device = find_device(ctx, device_id, application_id)
    after = decode_cursor(cursor, datetime)
    begin, stop = requested_range(start, end, datetime.now(UTC))
    if bucket is None:
        rows = reading_series.raw(ctx.conn, device.id, begin, stop, after=after[0] if after else None, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].time) if more and rows else None
        result = _Rows(device, rows, [], next_cursor)
    else:
        window = bucket_window(begin, stop, WIDTHS[bucket], after[0] if after else None, limit)
        found = reading_series.buckets(ctx.conn, device.id, WIDTHS[bucket], window.start, window.end)
        result = _Rows(device, [], found, encode_cursor(window.next_start) if window.next_start else None)
    audit_care(ctx, action, [device], start=begin.isoformat(), end=stop.isoformat(), bucket=bucket)
    return result


@router.get(
    "/devices/{device_id}/readings",
    summary="A device's readings, oldest first: raw rows, or statistics per bucket",
    responses={409: _CONFLICT},
)
def readings(
    ctx: Acting,
    device_id: DeviceIdPath,
    application_id: ApplicationQuery = None,
    start: Start = None,
    end: End = None,
    bucket: BucketQuery = None,
    limit: Limit = MAX_LIMIT,
    cursor: Cursor = None,
) -> Page[ReadingOut] | Page[BucketOut]:
    rows = _read(ctx, device_id, application_id, start, end, bucket, cursor, limit, "care_readings_viewed")
    if bucket is None:
        return Page[ReadingOut](items=[reading_out(r) for r in rows.raw], next_cursor=rows.next_cursor)
    return Page[BucketOut](items=[bucket_out(b) for b in rows.buckets], next_cursor=rows.next_cursor)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


@router.get(
    "/devices/{device_id}/readings.csv",
    summary="The same readings as CSV (the next page's cursor in the X-Next-Cursor header)",
    responses={
        **csv_responses("Raw: time and a column per quantity. Bucketed: start, quantity, min, max, mean, count"),
        409: _CONFLICT,
    },
)
def readings_csv(
    ctx: Acting,
    device_id: DeviceIdPath,
    application_id: ApplicationQuery = None,
    start: Start = None,
    end: End = None,
    bucket: BucketQuery = None,
    limit: CsvLimit = 10_000,
    cursor: Cursor = None,
) -> CsvResponse:
    rows = _read(ctx, device_id, application_id, start, end, bucket, cursor, limit, "care_readings_exported")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if bucket is None:
        writer.writerow(["time", *READING_COLUMNS])
        for r in rows.raw:
            writer.writerow([_cell(r.time), *(_cell(getattr(r, c)) for c in READING_COLUMNS)])
    else:
        writer.writerow(["start", "quantity", "min", "max", "mean", "count"])
        for b in rows.buckets:
            for q, s in b.quantities.items():
                writer.writerow([_cell(b.start), q, _cell(s.min), _cell(s.max), _cell(s.mean), s.count])
    headers = {"Content-Disposition": 'attachment; filename="readings.csv"'}
    if rows.next_cursor:
        headers["X-Next-Cursor"] = rows.next_cursor
    return CsvResponse(out.getvalue(), headers=headers)
