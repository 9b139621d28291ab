"""Query parameter types shared by the routes.

`Timestamp`: an ISO 8601 time with a zone (`2026-01-31T08:00:00Z`). pydantic alone would also take a
bare number as Unix time, which the OpenAPI document (`format: date-time`) does not promise, so
anything not shaped like an ISO date is refused first.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO.match(value):
        msg = "an ISO 8601 date-time with a time zone, e.g. 2026-01-31T08:00:00Z"
        raise ValueError(msg)
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
