from __future__ import annotations

import pytest

from lorawatch.settings import Settings, parse_mqtt_url


def test_parse_plain_url() -> None:
    t = parse_mqtt_url("mqtt://broker.local")
    assert (t.host, t.port, t.username, t.password, t.tls) == ("broker.local", 1883, None, None, False)


def test_parse_tls_url_with_api_key_password() -> None:
    t = parse_mqtt_url("mqtts://my-app%40ttn:NNSXS.ABC%2Fdef@eu1.cloud.thethings.network")
    assert (t.host, t.port, t.tls) == ("eu1.cloud.thethings.network", 8883, True)
    assert t.username == "my-app@ttn"
    assert t.password == "NNSXS.ABC/def"


@pytest.mark.parametrize(
    ("url", "message"),
    [("http://x", "must start with mqtt://"), ("mqtt://", "no host"), ("mqtt://h:99999", "invalid port")],
)
def test_parse_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mqtt_url(url)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", "postgresql://u:secret@h/db")
    monkeypatch.setenv("LORAWATCH_MQTT_TOPICS", "a/#,b/+")
    monkeypatch.setenv("LORAWATCH_LOG_LEVEL", "debug")
    monkeypatch.setenv("LORAWATCH_MQTT_QOS", "0")
    s = Settings()
    assert s.mqtt_qos == 0
    assert s.database_url is not None and s.database_url.get_secret_value().endswith("/db")
    assert "secret" not in repr(s)  # secrets never end up in logs
    assert s.mqtt_topics == "a/#,b/+"
    assert s.log_level == "DEBUG"


def test_bad_log_level_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_LOG_LEVEL", "loud")
    with pytest.raises(ValueError, match="LORAWATCH_LOG_LEVEL must be"):
        Settings()
