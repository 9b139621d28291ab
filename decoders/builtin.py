"""Imports every built-in codec module; each registers itself with `decoders.registry.register`."""

from __future__ import annotations

from decoders import elsys_ers_eye  # noqa: F401
