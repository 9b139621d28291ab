"""The API's settings as plain values: `lorawatch serve` builds them from LORAWATCH_* (the
composition root reads the environment; this package never does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: argon2 parameter sets by name (argon2.profiles); `cheapest` exists for tests only.
PASSWORD_PROFILES = ("rfc9106-low-memory", "cheapest")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """What `create_app` needs. `database_url` is the `lorawatch_api` login's (never the owner's: the
    app refuses to start on a role that bypasses row-level security)."""

    database_url: str = field(repr=False)  # may hold a password
    session_ttl_s: float = 12 * 3600
    #: Secure cookies: True always, False never, None when the request arrived over https.
    cookie_secure: bool | None = None
    #: Origins besides the app's own that may send cookie-authenticated unsafe requests and logins.
    allowed_origins: tuple[str, ...] = ()
    login_max_failures: int = 5
    login_max_failures_per_ip: int = 50
    login_window_s: float = 900
    password_profile: str = "rfc9106-low-memory"  # noqa: S105  # a parameter set's name, not a password
    pool_size: int = 10
    pool_timeout_s: float = 10.0
    #: The rules file in force (the alert worker's); None: the defaults shipped in alerts/.
    rules_file: Path | None = None
    #: The overview map's XYZ raster tiles ({z}/{x}/{y}); None: a plain projection, nothing fetched.
    map_tiles_url: str | None = None
    #: Pages judge "now" (silent for how long, readings how old) by the newest uplink stored instead
    #: of the wall clock: for `lorawatch demo`, whose simulations replay the past at a speed-up (its
    #: alert worker runs on the same data clock). Alert waits are always wall-clock times.
    data_clock: bool = False

    @classmethod
    def for_openapi(cls) -> ApiSettings:
        """Settings for building the app only to read its OpenAPI document (no database is opened
        until the app's lifespan starts)."""
        return cls(database_url="")
