"""Cheap, seeded identifiers: ULIDs, UUIDs, EUIs, session keys and uplink tokens.

Everything is drawn from a `random.Random` so a scenario run with the same seed produces the same ids.
ULIDs are encoded ten bits at a time from a table (the standard library's base32 encoder is pure Python
in 3.11 and several times slower).
"""

from __future__ import annotations

import base64
import random
import uuid

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Two Crockford characters for every 10-bit value: a ULID (130 bits with two leading zeros) is 13 lookups.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = tuple(range(120, -1, -10))


def ulid(rng: random.Random, ms: int) -> str:
    """A ULID for the millisecond `ms` since the epoch: 48 bits of time, 80 random bits, 26 characters."""
    value = (ms & 0xFFFFFFFFFFFF) << 80 | rng.getrandbits(80)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string from seeded bits."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hex_id(rng: random.Random, size: int, prefix: str = "") -> str:
    """An uppercase hex identifier of `size` bytes starting with the hex `prefix` (an OUI, a NetID)."""
    bits = 8 * size - 4 * len(prefix)
    return (prefix + f"{rng.getrandbits(bits):0{bits // 4}X}").upper()


def b64_bytes(rng: random.Random, size: int) -> str:
    """Standard base64 (with padding) of `size` random bytes: session key ids, uplink tokens, contexts."""
    return base64.b64encode(rng.getrandbits(8 * size).to_bytes(size, "big")).decode("ascii")
