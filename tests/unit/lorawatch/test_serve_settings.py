"""The API's settings: derived from LORAWATCH_*, validated with messages naming the variable."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from lorawatch.cli import UsageError
from lorawatch.cmd_serve import api_database_url, api_settings
from lorawatch.settings import Settings


def test_api_url_is_the_owners_with_the_api_role_and_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", "postgresql://owner:s3cret@db.example:6432/lw?sslmode=require")
    params = conninfo_to_dict(api_database_url(Settings()))
    assert params == {
        "user": "lorawatch_api",
        "host": "db.example",
        "port": "6432",
        "dbname": "lw",
        "sslmode": "require",
    }


def test_api_url_given_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_API_DATABASE_URL", "postgresql://lorawatch_api:pw@h/lw")
    s = Settings()
    assert api_database_url(s) == "postgresql://lorawatch_api:pw@h/lw"
    assert "pw@" not in repr(s) and "pw@" not in repr(api_settings(s))


def test_no_database_at_all_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="LORAWATCH_API_DATABASE_URL"):
        api_database_url(Settings())


def test_api_settings_carry_the_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", "postgresql://o@h/lw")
    monkeypatch.setenv("LORAWATCH_SESSION_TTL_H", "2")
    monkeypatch.setenv("LORAWATCH_COOKIE_SECURE", "true")
    monkeypatch.setenv("LORAWATCH_ALLOWED_ORIGINS", "https://a.example, https://b.example:8443/")
    monkeypatch.setenv("LORAWATCH_LOGIN_MAX_FAILURES", "3")
    a = api_settings(Settings())
    assert (a.session_ttl_s, a.cookie_secure, a.login_max_failures) == (7200, True, 3)
    assert a.allowed_origins == ("https://a.example", "https://b.example:8443")
    assert a.password_profile == "rfc9106-low-memory"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LORAWATCH_ALLOWED_ORIGINS": "a.example"}, "LORAWATCH_ALLOWED_ORIGINS: 'a.example' is not an origin"),
        ({"LORAWATCH_ALLOWED_ORIGINS": "https://a.example/app"}, "is not an origin"),
        ({"LORAWATCH_SERVE_TLS_CERT_FILE": "/c.pem"}, "go together"),
        ({"LORAWATCH_PASSWORD_PROFILE": "fast"}, "password_profile"),
        ({"LORAWATCH_SERVE_PORT": "0"}, "serve_port"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
