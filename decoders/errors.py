"""The one exception a decoder may raise.

Ingest turns a `DecodeError` into a dead-letter row; any other exception escaping a decoder is a bug
(the property tests feed arbitrary bytes to every codec to find them).
"""

from __future__ import annotations


class DecodeError(ValueError):
    """A payload that cannot be decoded, with a reason a person can act on.

    `reason` says what was wrong ("payload is 5 bytes, expected 8", "unknown fPort 42 (expected 2, 5)");
    `device`, `f_port` and `payload_hex` say which uplink, so the message stands alone in a log.
    """

    def __init__(self, reason: str, *, device: str = "", f_port: int | None = None, payload: bytes = b"") -> None:
        self.reason = reason
        self.device = device
        self.f_port = f_port
        self.payload_hex = payload.hex()
        where = ", ".join(
            part
            for part in (
                device,
                f"fPort {f_port}" if f_port is not None else "",
                f"payload {self.payload_hex[:64]}{'…' if len(self.payload_hex) > 64 else ''}" if payload else "",
            )
            if part
        )
        super().__init__(f"{reason} ({where})" if where else reason)


class EncodeError(ValueError):
    """Values that a device's payload format cannot carry (out of range, missing field)."""
