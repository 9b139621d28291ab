"""Every public vector in device-examples.json, for every device (level and care alike).

A vector's `expected` is the reference codec's `data`, compared key by key with a numeric tolerance;
`{"errors": [...]}` means the codec rejects the payload, which for us is a `DecodeError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from decoders import DecodeError, decode, normalize
from tests.unit.decoders.care_checks import assert_close

EXAMPLES = Path(__file__).parents[2] / "data" / "device-examples.json"
VECTORS: list[dict[str, Any]] = json.loads(EXAMPLES.read_text(encoding="utf-8"))


def _id(vector: dict[str, Any]) -> str:
    outcome = "error" if "errors" in vector["expected"] else "ok"
    return f"{vector['device']}:port{vector['f_port']}:{vector['bytes_hex']}:{outcome}"


@pytest.mark.parametrize("vector", VECTORS, ids=[_id(v) for v in VECTORS])
def test_example(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["bytes_hex"])
    expected = vector["expected"]
    if "errors" in expected:
        with pytest.raises(DecodeError) as info:
            decode(vector["device"], vector["f_port"], payload)
        assert info.value.reason
        return
    decoded = decode(vector["device"], vector["f_port"], payload)
    assert_close(decoded, expected)
    normalize(vector["device"], expected)  # TTS's decoded_payload shape normalises too


def test_every_vector_names_a_device() -> None:
    assert VECTORS and all({"device", "f_port", "bytes_hex", "expected"} <= set(v) for v in VECTORS)
