"""Cheap, seeded identifiers: ULIDs, UUIDs, EUIs, session keys and uplink tokens.

Everything is drawn from a `random.Random` so a scenario run with the same seed produces the same ids.
A ULID's random part is 80 bits, which base32-encodes to exactly 16 characters, so the standard
library encoder plus a translation to Crockford's alphabet does it in one call per id.
"""

from __future__ import annotations

import base64
import random
import uuid

_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans(_RFC4648, _CROCKFORD)


def ulid_time(ms: int) -> str:
    """The 10-character time part of a ULID (48-bit milliseconds)."""
    chars = []
    for _ in range(10):
        ms, digit = divmod(ms, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def ulid_random(rng: random.Random) -> str:
    """The 16-character random part of a ULID."""
    return base64.b32encode(rng.getrandbits(80).to_bytes(10, "big")).decode("ascii").translate(_TO_CROCKFORD)


def ulid(rng: random.Random, ms: int) -> str:
    """A ULID for the millisecond `ms` since the epoch."""
    return ulid_time(ms) + ulid_random(rng)


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
