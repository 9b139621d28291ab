"""The registry of codecs, keyed by the TTN Device Repository's `brand_id/model_id`.

A codec is one module that builds a `Codec` and passes it to `register()`, the same call a third-party
decoder would make. Built-ins are registered when `decoders` is imported (see `decoders/builtin.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from decoders.errors import DecodeError
from decoders.types import Normalized

DecodeFn = Callable[[int, bytes], dict[str, Any]]
EncodeFn = Callable[[Mapping[str, Any]], tuple[int, bytes]]
NormalizeFn = Callable[[Mapping[str, Any]], Normalized]


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One documented output field of a codec, for `docs/decoders.md`."""

    f_port: int | None  # None: any port
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Codec:
    """Everything the system knows about one device model's payloads.

    - `decode(f_port, payload)` returns what the reference codec puts in `data`, or raises `DecodeError`.
    - `encode(decoded)` is the inverse: it takes a dict shaped like `decode`'s output (a subset of the
      keys is enough where the device's frames are optional) and returns `(f_port, payload)`.
    - `normalize(decoded)` maps the decoded dict to the vocabulary in `decoders.types`.
    - `ports` are the fPorts the device sends data on; `reference` names the codec the output follows.
    """

    device: str
    title: str
    kind: str  # "level" or "care"
    ports: tuple[int, ...]
    reference: str
    decode: DecodeFn
    encode: EncodeFn
    normalize: NormalizeFn
    fields: tuple[FieldDoc, ...] = field(default=())


_CODECS: dict[str, Codec] = {}


def register(codec: Codec) -> Codec:
    """Add a codec; registering the same device twice is a programming error."""
    if codec.device in _CODECS:
        msg = f"a codec for {codec.device!r} is already registered"
        raise ValueError(msg)
    _CODECS[codec.device] = codec
    return codec


def get(device: str) -> Codec:
    """The codec for `brand_id/model_id`, or `DecodeError` naming the known devices."""
    try:
        return _CODECS[device.lower()]
    except KeyError:
        known = ", ".join(sorted(_CODECS))
        raise DecodeError(f"unknown device model {device!r}; known models: {known}") from None


def all_codecs() -> list[Codec]:
    """Every registered codec, sorted by device name."""
    return [_CODECS[name] for name in sorted(_CODECS)]
