"""One JSON error body for every refusal, `{"error": {"code": ..., "message": ...}}`, declared in the
OpenAPI document so clients (and schemathesis) know every status a route can answer with.

Validation errors say where and what (`details`), never the value sent: a refused login body would
otherwise echo the password.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

#: Default machine-readable codes by status, for errors raised without one (e.g. an unknown route).
_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class FieldError(BaseModel):
    """Where a request failed validation and why (no input value)."""

    loc: list[str | int]
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """Every error response's body."""

    error: ErrorDetail


class ApiError(StarletteHTTPException):
    """An error response with a stable `code` (snake_case) and a human `message`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code


def _declared(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: Declared for every route (FastAPI(responses=...)): each can be refused before it runs.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _declared("Malformed request (e.g. a body that is not JSON, an invalid cursor)"),
    401: _declared("No valid credentials: a bearer API token or a session cookie"),
    403: _declared("Authenticated but not allowed (role, CSRF token, origin)"),
    404: _declared("No such resource (or not visible to your role)"),
    422: _declared("Parameters or body failed validation"),
    429: _declared("Too many failed logins; retry after the Retry-After header's seconds"),
    503: _declared("The database cannot be reached (or the API is starting or stopping)"),
}


def body(status: int, code: str, message: str, details: list[FieldError] | None = None) -> dict[str, Any]:
    return ErrorBody(error=ErrorDetail(code=code, message=message, details=details)).model_dump(exclude_none=True)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(body(exc.status_code, code, message), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [FieldError(loc=list(err.get("loc", ())), message=str(err.get("msg", ""))) for err in exc.errors()]
    first = details[0] if details else None
    where = ".".join(str(p) for p in first.loc) if first else "request"
    message = f"{where}: {first.message}" if first else "the request failed validation"
    return JSONResponse(body(422, "invalid_request", message, details), status_code=422)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("api_database_unavailable", extra={"error_class": type(exc).__name__})
    return JSONResponse(body(503, "unavailable", "the database cannot be reached; retry later"), status_code=503)


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    # The traceback is uvicorn's to log (Starlette re-raises after this answer); ours names the class.
    log.error("api_internal_error", extra={"error_class": type(exc).__name__})
    return JSONResponse(body(500, "internal_error", "internal error"), status_code=500)


def install(app: FastAPI) -> None:
    """Route every error through the one body."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoolTimeout, _unavailable)
    app.add_exception_handler(psycopg.OperationalError, _unavailable)
    app.add_exception_handler(Exception, _internal_error)
