"""Imports every built-in codec module; each registers itself with `decoders.registry.register`."""

from __future__ import annotations
