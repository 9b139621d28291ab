"""Imports every built-in codec module; each registers itself with `decoders.registry.register`."""

from __future__ import annotations

from decoders import (
    decentlab_dl_mbx,  # noqa: F401
    dragino_dds75_lb,  # noqa: F401
    dragino_ldds75,  # noqa: F401
    dragino_lmds200,  # noqa: F401
    elsys_ers_eye,  # noqa: F401
    milesight_em310_udl,  # noqa: F401
    milesight_em410_rdl,  # noqa: F401
    milesight_em500_udl,  # noqa: F401
    milesight_vs330,  # noqa: F401
    milesight_vs370,  # noqa: F401
    milesight_vs373,  # noqa: F401
    milesight_ws202,  # noqa: F401
)
