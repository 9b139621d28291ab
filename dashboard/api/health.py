"""`/healthz` (the process answers), `/readyz` (and the database does), `/metrics` (Prometheus).

None needs credentials: they say nothing about data. /metrics is left out of the OpenAPI document
(it is not JSON); restrict it at the network edge if request rates are not for everyone.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from dashboard.errors import ApiError
from dashboard.state import app_state

router = APIRouter(tags=["operations"])

#: /readyz waits this long for a pooled connection before saying the database is not there.
READY_TIMEOUT_S = 2.0


class Status(BaseModel):
    status: str


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> Status:
    return Status(status="ok")


@router.get("/readyz", summary="Readiness: the database answers")
def readyz(request: Request) -> Status:
    state = app_state(request)
    try:
        with state.pool.connection(timeout=READY_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except ApiError:
        raise
    except Exception:  # whatever the pool or driver raises, the answer is "not ready"
        raise ApiError(503, "not_ready", "the database cannot be reached") from None
    return Status(status="ready")


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(app_state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
