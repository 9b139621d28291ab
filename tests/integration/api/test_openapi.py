"""schemathesis against the OpenAPI document, calling the live app on the real database with each
role's API token: no server error, no response outside its declared status codes and schemas.

The document is read at import with `from_dict` (building the app opens no database); the calls go to
a live uvicorn server, so what is tested is the real app over real HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from dashboard.app import create_app
from dashboard.config import ApiSettings
from tests.integration.api.conftest import bearer

schema = schemathesis.openapi.from_dict(create_app(ApiSettings.for_openapi()).openapi())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("role", ["admin", "highways", "care"])
def test_openapi(case: schemathesis.Case[Any], api: str, people: dict[str, str], role: str) -> None:
    # An opaque cursor cannot be described by a schema: every string is schema-valid and almost none
    # is a cursor, so a made-up one is refused (400, declared) and "valid data accepted" cannot hold.
    # Likewise a CSV body: every string is schema-valid text/csv, and almost none is a valid registry.
    made_up_cursor = bool(case.query and "cursor" in case.query)
    csv_body = "text/csv" in case.operation.definition.raw.get("requestBody", {}).get("content", {})
    excluded = [schemathesis.checks.positive_data_acceptance] if made_up_cursor or csv_body else []
    case.call_and_validate(base_url=api, headers=bearer(people[role]), excluded_checks=excluded)
