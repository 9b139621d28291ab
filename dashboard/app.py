"""The app factory: `create_app(settings)` builds the FastAPI app; its lifespan opens the pool.

The pool connects as the API's login role (`lorawatch_api`). Before serving, the lifespan checks that
role can be held to row-level security (not a superuser, not BYPASSRLS, no table ownership,
NOINHERIT, a member of the three role roles) and refuses to start otherwise: a misconfigured URL
must fail closed, not serve care data to everyone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from dashboard import errors, pages
from dashboard.api import alerts, audit, auth, dead_letters, devices, gateways, health, readings, rules, silences
from dashboard.config import ApiSettings
from dashboard.metrics import ApiMetrics, MetricsMiddleware
from dashboard.passwords import Passwords
from dashboard.state import AppState
from store import access
from store.pool import open_pool
from store.runtime import quiet_gc

log = logging.getLogger(__name__)


class UnsafeDatabaseRole(RuntimeError):
    """The API's database URL logs in as a role that row-level security would not hold."""


def _version() -> str:
    try:
        return version("lorawatch")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "0"


def _open(state: AppState) -> None:
    settings = state.settings
    pool = open_pool(settings.database_url, max_size=settings.pool_size, timeout=settings.pool_timeout_s, check=True)
    try:
        with pool.connection() as conn:
            problems = access.role_problems(conn)
    except BaseException:
        pool.close()
        raise
    if problems:
        pool.close()
        msg = "refusing to serve: " + "; ".join(problems) + f" (connect as {access.API_ROLE}; see docs/security.md)"
        raise UnsafeDatabaseRole(msg)
    state.pool_ = pool


def _close(state: AppState) -> None:
    pool, state.pool_ = state.pool_, None
    if pool is not None:
        pool.close()


def create_app(settings: ApiSettings) -> FastAPI:
    """The API. Nothing connects until the lifespan starts, so building the app only to read its
    OpenAPI document (`ApiSettings.for_openapi()`) needs no database."""
    state = AppState(settings, Passwords(settings.password_profile), ApiMetrics())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_open, state)
        quiet_gc()  # store/runtime.py: a full collection every few overview loads cost 70 ms each
        log.info("api_started", extra={"pool_size": settings.pool_size})
        try:
            yield
        finally:
            await run_in_threadpool(_close, state)

    app = FastAPI(
        title="lorawatch",
        version=_version(),
        description="LoRaWAN gully-level and care-sensor telemetry. Authenticate with an API token "
        "(`Authorization: Bearer lw_...`) or the session cookie from POST /api/v1/auth/login.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        responses=errors.RESPONSES,
        lifespan=lifespan,
    )
    app.state.lorawatch = state
    errors.install(app)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    routers = (health, auth, devices, readings, gateways, alerts, silences, rules, dead_letters, audit)
    for module in routers:
        app.include_router(module.router)
    pages.install(app)
    return app
