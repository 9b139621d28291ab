"""Pure payload decoding for LoRaWAN devices: bytes -> decoded dict -> normalised measurements.

Imports nothing of ours and does no I/O. The decoded dict equals what the device's reference codec
(TTN Device Repository or vendor) puts in `data`, so a device looks the same whether The Things Stack
decoded it or we did. The only exception that leaves `decode` is `DecodeError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import builtin as _builtin  # noqa: F401  (registers the built-in codecs)
from decoders.errors import DecodeError, EncodeError
from decoders.registry import Codec, FieldDoc, all_codecs, get, register
from decoders.types import PHYSICAL_RANGES, VOCABULARY, Event, Measurement, Normalized, normalize_collecting

__all__ = [
    "PHYSICAL_RANGES",
    "VOCABULARY",
    "Codec",
    "DecodeError",
    "EncodeError",
    "Event",
    "FieldDoc",
    "Measurement",
    "Normalized",
    "all_codecs",
    "decode",
    "encode",
    "get",
    "normalize",
    "register",
]


def decode(device: str, f_port: int, payload: bytes) -> dict[str, Any]:
    """Decode one uplink's FRMPayload for `device` (`brand_id/model_id`) on `f_port`.

    Raises `DecodeError` for an unknown model, an unexpected fPort, or a short or corrupt payload.
    Any other exception from a codec is wrapped too, so callers can rely on the contract; the property
    tests make sure none occurs in practice.
    """
    codec = get(device)
    try:
        return codec.decode(f_port, bytes(payload))
    except DecodeError as exc:
        if not exc.device:
            raise DecodeError(exc.reason, device=codec.device, f_port=f_port, payload=payload) from None
        raise
    except Exception as exc:  # a codec bug: still honour the contract
        raise DecodeError(
            f"decoder bug: {type(exc).__name__}: {exc}", device=codec.device, f_port=f_port, payload=payload
        ) from exc


def encode(device: str, decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """Build `(f_port, payload)` that decodes back to `decoded` (within the device's resolution)."""
    return get(device).encode(decoded)


def normalize(device: str, decoded: Mapping[str, Any]) -> Normalized:
    """Typed measurements and events from a decoded dict (ours or TTS's `decoded_payload`).

    Values the codec drops as physically impossible come back in `rejected`.
    """
    return normalize_collecting(get(device).normalize, decoded)
