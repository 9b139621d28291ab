"""Decodes per second for every registered device (informational; no target).

Payloads are the device's public example vectors that decode, plus `encode()` of each decoded example,
so devices without vectors (DDS75-LB) are measured on frames built by their own encoder.
Run: `python -m benchmarks.decoders [--seconds 0.5]`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from decoders import DecodeError, all_codecs
from decoders.registry import Codec

EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "device-examples.json"
#: Frames for devices with no public vector, as (fPort, hex).
DERIVED: dict[str, list[tuple[int, str]]] = {
    "dragino/dds75-lb": [(2, "0d3b0b0500010501"), (5, "27013001ff0d3b")],
    "milesight-iot/em410-rdl": [(85, "20ce00e1f565e803feff320030")],
}


def payloads(codec: Codec, vectors: list[dict[str, object]]) -> list[tuple[int, bytes]]:
    """Decodable (fPort, payload) pairs for `codec`: vectors, derived frames and re-encoded ones."""
    found = [
        (int(str(v["f_port"])), bytes.fromhex(str(v["bytes_hex"]))) for v in vectors if v["device"] == codec.device
    ]
    found += [(port, bytes.fromhex(hex_)) for port, hex_ in DERIVED.get(codec.device, [])]
    usable = []
    for port, payload in found:
        try:
            usable.append(codec.encode(codec.decode(port, payload)))
            usable.append((port, payload))
        except (DecodeError, ValueError):
            continue
    return usable


def rate(codec: Codec, frames: list[tuple[int, bytes]], seconds: float) -> float:
    """Decodes per second over about `seconds`."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for port, payload in frames:
            codec.decode(port, payload)
        count += len(frames)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decoders", description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per device")
    args = parser.parse_args()
    vectors = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    print(f"{'device':<28} {'frames':>6} {'decodes/s':>12}")
    for codec in all_codecs():
        frames = payloads(codec, vectors)
        if not frames:
            print(f"{codec.device:<28} {0:>6} {'(no frames)':>12}")
            continue
        print(f"{codec.device:<28} {len(frames):>6} {rate(codec, frames, args.seconds):>12,.0f}")


if __name__ == "__main__":
    main()
