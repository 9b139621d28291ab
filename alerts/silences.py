"""What a silence may match on, and how far each role's silences may reach: pure rules shared by the
CLI (`lorawatch silences add`), the API (`POST /api/v1/silences`) and, as SQL, the row-level security
policies of migration 0009.

Why the reach is read from the matchers and not from who made the silence: a silence holds back every
alert its matchers match (alerts/engine.py `_silenced`), so `{category: offline}` made by a highways
engineer would also silence the care fleet's offline alerts. A role's silence must therefore be
pinned to its own fleet by a `kind` matcher (gateways are both fleets' concern, so either may pin
`gateway`), and highways may not match on `care_group`, which is care data. The database checks the
same on every row (silences_highways / silences_care), so a bug here is refused, never obeyed.
"""

from __future__ import annotations

from collections.abc import Mapping

#: What a silence may match on (alerts' fields; `care_group` from the device).
SILENCE_KEYS = ("rule", "category", "severity", "device_id", "application_id", "gateway_id", "kind", "care_group")

#: The alert kinds each non-admin role's silences may be pinned to; the first is the default.
KINDS_BY_ROLE: Mapping[str, tuple[str, ...]] = {"highways": ("gully", "gateway"), "care": ("care", "gateway")}
#: Matcher keys a role may not use at all.
FORBIDDEN_KEYS: Mapping[str, frozenset[str]] = {"highways": frozenset({"care_group"}), "care": frozenset()}


class OutOfReach(ValueError):
    """A silence the role may not make; `key` is the matcher at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def scoped(role: str, matchers: Mapping[str, str]) -> dict[str, str]:
    """The matchers a silence made by `role` is stored with: a non-admin role's is pinned to its fleet
    (`kind` added when absent). Raises OutOfReach for a matcher beyond the role's data."""
    out = dict(matchers)
    kinds = KINDS_BY_ROLE.get(role)
    if kinds is None:  # admin: anything, as the CLI
        return out
    forbidden = sorted(FORBIDDEN_KEYS.get(role, frozenset()) & out.keys())
    if forbidden:
        raise OutOfReach(forbidden[0], f"matchers.{forbidden[0]}: the {role} role cannot silence by {forbidden[0]}")
    out.setdefault("kind", kinds[0])
    if out["kind"] not in kinds:
        raise OutOfReach("kind", f"matchers.kind: the {role} role can silence kind {' or '.join(kinds)} only")
    return out


__all__ = ["FORBIDDEN_KEYS", "KINDS_BY_ROLE", "SILENCE_KEYS", "OutOfReach", "scoped"]
