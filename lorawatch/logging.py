"""Logging configured in one place, called only from entry points.

Modules log stable snake_case events with `extra` fields; this formatter renders them as JSON lines
(`LORAWATCH_LOG_FORMAT=json`) or as readable text with the extras appended.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
#: Chatty libraries stay at WARNING unless we are debugging.
_QUIET = ("paho", "psycopg", "uvicorn.access", "apscheduler", "httpx")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test runners and daemons swap it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STD}
        return base + ("  " + " ".join(f"{k}={v}" for k, v in extras.items()) if extras else "")


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Install the one root handler (stderr)."""
    handler: logging.Handler = _StderrHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
