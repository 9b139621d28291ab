"""Cheap, seeded identifiers: ULIDs, UUIDs, EUIs, session keys and uplink tokens.

Everything is drawn from a `random.Random` so a scenario run with the same seed produces the same ids.
ULIDs are encoded ten bits at a time from a table (the standard library's base32 encoder is pure Python
in 3.11 and several times slower).
"""

from __future__ import annotations

import binascii
import random
import uuid
from functools import lru_cache

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Two Crockford characters for every 10-bit value (a ULID's time part: the low 20 bits by lookup, the
#: rest cached).
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
#: Three characters for every 15-bit value: the 80 random bits are one character and five lookups.
_TRIPLES = [a + b for a in _CROCKFORD for b in _PAIRS]


@lru_cache(maxsize=4096)
def _ulid_high(high: int) -> str:
    """The first six characters of a ULID's time part: the milliseconds above the low 20 bits, which
    change only every ~17 minutes (the full time part changes every millisecond, so caching it misses)."""
    return "".join([_PAIRS[(high >> shift) & 1023] for shift in (20, 10, 0)])


def ulid(rng: random.Random, ms: int) -> str:
    """A ULID for the millisecond `ms` since the epoch: 48 bits of time, 80 random bits, 26 characters.
    One f-string of table lookups: several a message, so each concatenation saved counts."""
    r = rng.getrandbits(80)
    pairs = _PAIRS
    triples = _TRIPLES
    return (
        f"{_ulid_high((ms >> 20) & 0xFFFFFFF)}{pairs[(ms >> 10) & 1023]}{pairs[ms & 1023]}{_CROCKFORD[r >> 75]}"
        f"{triples[(r >> 60) & 0x7FFF]}{triples[(r >> 45) & 0x7FFF]}{triples[(r >> 30) & 0x7FFF]}"
        f"{triples[(r >> 15) & 0x7FFF]}{triples[r & 0x7FFF]}"
    )


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string from seeded bits."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hex_id(rng: random.Random, size: int, prefix: str = "") -> str:
    """An uppercase hex identifier of `size` bytes starting with the hex `prefix` (an OUI, a NetID)."""
    bits = 8 * size - 4 * len(prefix)
    return (prefix + f"{rng.getrandbits(bits):0{bits // 4}X}").upper()


def b64_bytes(rng: random.Random, size: int) -> str:
    """Standard base64 (with padding) of `size` random bytes: session key ids, uplink tokens, contexts."""
    # binascii directly: `base64.b64encode` is a Python wrapper around it (one uplink token a message).
    return binascii.b2a_base64(rng.getrandbits(8 * size).to_bytes(size, "big"), newline=False).decode("ascii")
