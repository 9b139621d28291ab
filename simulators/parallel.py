"""Generate a scenario's messages in worker processes, merged back into one time-ordered stream.

Each worker plans the whole run (cheap, and identical in every worker because every part of the plan
has its own seeded generator) and then generates only its share of the devices, device `i` going to
worker `i % workers`; a device's data is therefore the same whatever the worker count. Only the
message builders' ids differ between worker counts (each worker has its own), so a feed is
reproducible for a given seed and worker count. The parent merges the workers' batches by time and
does nothing else per message, leaving its core to the publisher.
"""

from __future__ import annotations

import heapq
import multiprocessing as mp
import queue as queue_mod
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from simulators import feed, scenarios
from simulators.capture import Message
from simulators.model import Label
from simulators.run import RunConfig

BATCH = 1000
_QUEUE_BATCHES = 16


@dataclass(frozen=True, slots=True)
class _Done:
    labels: list[Label]
    error: str = ""


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker needs (picklable): scenario name, run config and message options."""

    scenario: str
    config: RunConfig
    fmt: feed.Format
    seed: int
    qos: int = 0
    decoded: bool = True
    simulated: bool = False


def _builder_seed(seed: int, shard: int) -> str:
    return str(seed) if shard == 0 else f"{seed}/{shard}"


def _work(job: Job, shard: int, workers: int, out: Any) -> None:
    """Worker body: put batches of (time_ns, topic, payload), then `_Done` with this shard's labels."""
    try:
        sim = scenarios.get(job.scenario).build(job.config)
        sim.streams = sim.streams[shard::workers]
        build = feed.builder(
            job.fmt, _builder_seed(job.seed, shard), decoded=job.decoded, simulated=job.simulated
        ).build
        batch: list[tuple[int, str, str]] = []
        for record in sim.records():
            topic, payload = build(record)
            batch.append((int(record.time * 1_000_000) * 1000, topic, payload))
            if len(batch) >= BATCH:
                out.put(batch)
                batch = []
        if batch:
            out.put(batch)
        mine = {d.device_id for d in sim.devices[shard::workers]}
        out.put(_Done([label for label in sim.labels if label.device_id in mine]))
    except Exception as exc:  # reported to the parent, which raises it
        out.put(_Done([], f"{type(exc).__name__}: {exc}"))


@dataclass
class ParallelFeed:
    """Messages from `workers` processes. Iterate once; `labels` is complete after iteration."""

    job: Job
    workers: int
    labels: list[Label] = field(default_factory=list)
    _procs: list[Any] = field(default_factory=list)
    _queues: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
        for shard in range(self.workers):
            q = ctx.Queue(maxsize=_QUEUE_BATCHES)
            proc = ctx.Process(target=_work, args=(self.job, shard, self.workers, q), daemon=True)
            proc.start()
            self._queues.append(q)
            self._procs.append(proc)

    def _drain(self, q: Any) -> Iterator[tuple[int, str, str]]:
        while True:
            try:
                item = q.get(timeout=60)
            except queue_mod.Empty:
                msg = "a simulator worker stopped answering"
                raise RuntimeError(msg) from None
            if isinstance(item, _Done):
                if item.error:
                    raise RuntimeError(f"simulator worker failed: {item.error}")
                self.labels.extend(item.labels)
                return
            yield from item

    def __iter__(self) -> Iterator[Message]:
        qos = self.job.qos
        try:
            for time_ns, topic, payload in heapq.merge(*map(self._drain, self._queues), key=itemgetter(0)):
                yield Message(topic, payload, time_ns, qos)
        finally:
            self.close()

    def close(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)

    def sorted_labels(self) -> list[Label]:
        return sorted(self.labels, key=lambda label: (label.start, label.device_id, label.label))
