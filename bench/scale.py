"""Seconds per task as the chain's history grows, and as the network grows."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench.workflow import fresh_args
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.sim.network import Network
from hydrogen_harness.protocol.constants import CNX

__all__ = ["seconds_per_task_aged", "seconds_per_task_by_nodes"]


def _one_task(network: Network) -> float:
    app = network.apps[0]
    start = time.perf_counter()
    app.submit(fresh_args())
    network.settle()
    return time.perf_counter() - start


def _network(backend: str, tasks: int) -> Network:
    chain = Chain.revm(seed=5) if backend == "revm" else Chain.in_memory(seed=5)
    network = Network(seed=5, nodes=["honest"] * 3, chain=chain)
    network.add_app(cnx=(tasks + 10) * 30 * CNX)
    return network


def seconds_per_task_aged(
    backend: str,
    total: int = 1000,
    budget_s: float = 60.0,
    pairs: int = 3,
    batch: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float | int]:
    """Seconds per task around task 10 and after task N, on the in-memory chain
    `backend`. One network runs tasks until `total` or `budget_s` (N is where it
    stopped); then batches are timed in interleaved pairs, tasks 6-15 of a fresh
    network against the next `batch` tasks of the aged one, so that the load of a
    shared machine falls on both sides alike."""
    aged = _network(backend, total + pairs * batch)
    _one_task(aged)  # warm-up: first-use costs are not history
    started = time.perf_counter()
    done = 0
    while done < total and time.perf_counter() - started < budget_s:
        done += 1
        _one_task(aged)
        if progress is not None:
            progress(done)
    early: list[float] = []
    late: list[float] = []
    for pair in range(pairs):
        fresh = _network(backend, 20)
        for _ in range(5):
            _one_task(fresh)
        early.append(statistics.median(_one_task(fresh) for _ in range(batch)))
        late.append(statistics.median(_one_task(aged) for _ in range(batch)))
    ratios = [b / a for a, b in zip(early, late)]
    return {
        "n": done,
        "seconds_per_task_at_10": round(statistics.median(early), 4),
        "seconds_per_task_after_n": round(statistics.median(late), 4),
        "ratio_min": round(min(ratios), 3),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_max": round(max(ratios), 3),
    }


def seconds_per_task_by_nodes(counts: tuple[int, ...] = (5, 50, 200), tasks: int = 5) -> dict[int, float]:
    figures: dict[int, float] = {}
    for count in counts:
        network = Network(seed=6, nodes=["honest"] * count)
        network.add_app(cnx=10**5 * CNX)
        _one_task(network)  # warm-up
        figures[count] = statistics.median(_one_task(network) for _ in range(tasks))
    return figures
