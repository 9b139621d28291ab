"""`evolve(state, **changes)`: `dataclasses.replace` for the evaluators' frozen, slotted states, about
three times as fast.

Why: every reading moves every rule's state one step, and each step is a copy with a few fields
changed. `dataclasses.replace` walks the field list and calls the frozen `__init__` (one
`object.__setattr__` per field, keyword arguments rebuilt); on a 20-field state that was a sixth of a
replay's time. Here one function per class is generated on first use that copies the slots directly.
It does what replace does for these classes (frozen, slots, no `__post_init__`, no init-only
fields), and refuses a field the class does not have, as replace does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()
_MAKERS: dict[type, Callable[..., Any]] = {}


def evolve(state: T, **changes: Any) -> T:
    """A copy of `state` with `changes` applied."""
    maker = _MAKERS.get(type(state))
    if maker is None:
        maker = _MAKERS[type(state)] = _maker(type(state))
    made: T = maker(state, **changes)
    return made


def _maker(cls: type) -> Callable[..., Any]:
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return lambda state, **changes: dataclasses.replace(state, **changes)
    names = [f.name for f in dataclasses.fields(cls)]
    args = ", ".join(f"{name}=_M" for name in names)
    body = "".join(f"    _set(new, {name!r}, state.{name} if {name} is _M else {name})\n" for name in names)
    source = f"def evolve(state, *, {args}):\n    new = _new(_C)\n{body}    return new\n"
    scope: dict[str, Any] = {"_M": _MISSING, "_new": object.__new__, "_C": cls, "_set": object.__setattr__}
    exec(source, scope)  # noqa: S102 - generated from the dataclass's own field names
    made: Callable[..., Any] = scope["evolve"]
    return made


__all__ = ["evolve"]
