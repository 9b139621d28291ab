"""The garbage collector's settings for lorawatch's long-running processes (ingest and its workers,
the alert worker, the dashboard, `lorawatch score`). It lives in `store` because every one of those
processes imports it, and nothing else of ours may be imported by all of them.

CPython frees nearly everything by reference counting as it goes; the cyclic collector only finds
cycles, which these processes rarely make. Its default thresholds (700, 10, 10) suit short scripts:
in a process that holds a large live heap (the engine's rule states, a thousand devices' baselines,
plotly's validators) and makes lots of short-lived objects, a collection runs every few hundred
allocations and a full one, walking the whole heap, every few batches. Measured on a 1,000-gully x
2-day capture through `lorawatch score`: the engine's process spent 7.5 s, about a fifth of its CPU,
in 7,750 collections; with THRESHOLDS and the start-up heap frozen, 0.1 s, and the same alerts. On
the dashboard a full collection every few overview loads cost 70 ms each, and set the p95 at twice
the median (benchmarks/dashboard.py).
"""

from __future__ import annotations

import gc

#: Collect the youngest generation every 50,000 net allocations (not 700), the middle one every 50 of
#: those, the oldest every 100 of those (and then only once it has grown by a quarter, as CPython does).
THRESHOLDS = (50_000, 50, 100)


def quiet_gc() -> None:
    """Collect less often, and put everything alive now (modules, codecs, the app) beyond the
    collector's reach for good: call it once the process has loaded what it keeps. Freezing is done
    once per process (a test process starts many services)."""
    gc.set_threshold(*THRESHOLDS)
    if gc.get_freeze_count() == 0:
        gc.freeze()


__all__ = ["THRESHOLDS", "quiet_gc"]
