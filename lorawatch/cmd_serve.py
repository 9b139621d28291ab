"""`lorawatch serve`: the JSON API (dashboard/) under uvicorn, from the same LORAWATCH_* settings.

The API connects as `lorawatch_api` (LORAWATCH_API_DATABASE_URL, or the owner's URL with that user
and no password, which is right for the embedded cluster's loopback trust); it refuses to start on a
role that could bypass row-level security (docs/security.md).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from dashboard.config import ApiSettings
from lorawatch.cli import UsageError, database_url
from lorawatch.settings import Settings
from store.access import api_conninfo


def api_database_url(settings: Settings) -> str:
    """The URL the API connects with (see LORAWATCH_API_DATABASE_URL)."""
    if settings.api_database_url is not None:
        return settings.api_database_url.get_secret_value()
    if settings.database_url is None:
        msg = "set LORAWATCH_API_DATABASE_URL (or LORAWATCH_DATABASE_URL, to derive it) for `lorawatch serve`"
        raise UsageError(msg)
    return api_conninfo(database_url(settings))


def api_settings(settings: Settings) -> ApiSettings:
    """The dashboard's plain settings, built from lorawatch's."""
    return ApiSettings(
        database_url=api_database_url(settings),
        session_ttl_s=settings.session_ttl_h * 3600,
        cookie_secure=settings.cookie_secure,
        allowed_origins=tuple(o.strip().rstrip("/") for o in settings.allowed_origins.split(",") if o.strip()),
        login_max_failures=settings.login_max_failures,
        login_max_failures_per_ip=settings.login_max_failures_per_ip,
        login_window_s=settings.login_window_s,
        password_profile=settings.password_profile,
        pool_size=settings.api_pool_size,
        rules_file=settings.rules_file,
        map_tiles_url=settings.map_tiles_url,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve` to the `lorawatch` command line."""
    p = sub.add_parser(
        "serve",
        help="run the JSON API (FastAPI under uvicorn)",
        description="Serve the API under /api/v1/ (OpenAPI at /api/v1/openapi.json), /healthz, /readyz, /metrics.",
    )
    p.add_argument("--host", help="listen address (default: LORAWATCH_SERVE_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default: LORAWATCH_SERVE_PORT, 8000)")
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from dashboard.app import create_app

    port = args.port if args.port is not None else settings.serve_port
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, not {port}")
    tls = settings.serve_tls_cert_file, settings.serve_tls_key_file
    for path in tls:
        if path is not None and not path.is_file():
            raise UsageError(f"TLS file {path} does not exist (LORAWATCH_SERVE_TLS_CERT_FILE / _KEY_FILE)")
    config = uvicorn.Config(
        create_app(api_settings(settings)),
        host=args.host or settings.serve_host,
        port=port,
        log_config=None,  # lorawatch.logging already configured the root logger
        proxy_headers=True,
        forwarded_allow_ips=settings.serve_forwarded_allow_ips,
        ssl_certfile=str(tls[0]) if tls[0] else None,
        ssl_keyfile=str(tls[1]) if tls[1] else None,
        server_header=False,
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(SystemExit):  # uvicorn exits when the lifespan refused to start (an unsafe role)
        server.run()
    if not server.started:
        print("lorawatch: the API did not start (the log above says why)", file=sys.stderr)
        return 1
    return 0
