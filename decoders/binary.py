"""Bounds-checked byte reading shared by the codecs, so a short payload is a `DecodeError`, never an
`IndexError` or `struct.error`."""

from __future__ import annotations

from decoders.errors import DecodeError


class Reader:
    """Reads fixed-width integers from a payload, raising `DecodeError` when it runs out."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str = "record") -> bytes:
        if self.remaining < n:
            msg = (
                f"truncated {what}: needs {n} bytes at offset {self.pos}, "
                f"payload has {self.remaining} left of {len(self.data)}"
            )
            raise DecodeError(msg)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int, *, little: bool, what: str = "record") -> int:
        return int.from_bytes(self.take(n, what), "little" if little else "big")

    def sint(self, n: int, *, little: bool, what: str = "record") -> int:
        return int.from_bytes(self.take(n, what), "little" if little else "big", signed=True)


def expect_length(payload: bytes, *lengths: int, what: str = "payload") -> None:
    """Raise `DecodeError` unless `len(payload)` is one of `lengths`."""
    if len(payload) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        msg = f"{what} is {len(payload)} bytes, expected {expected}"
        raise DecodeError(msg)


def expect_port(f_port: int, *ports: int) -> None:
    """Raise `DecodeError` unless `f_port` is one the device uses."""
    if f_port not in ports:
        msg = f"unexpected fPort {f_port} (this device sends on {', '.join(str(p) for p in ports)})"
        raise DecodeError(msg)
