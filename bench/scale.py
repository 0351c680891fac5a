"""Seconds per task as the chain's history grows, and as the network grows."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench.workflow import ARGS
from hydrogen_harness.sim.network import Network
from hydrogen_harness.protocol.constants import CNX

__all__ = ["seconds_per_task_by_history", "seconds_per_task_by_nodes"]


def _one_task(network: Network, number: int) -> float:
    app = network.apps[0]
    start = time.perf_counter()
    app.submit({**ARGS, "prompt": f"scale {number}"})
    network.settle()
    return time.perf_counter() - start


def seconds_per_task_by_history(
    total: int = 1000, marks: tuple[int, ...] = (10, 100, 1000), window: int = 5, progress: Callable[[int], None] | None = None
) -> dict[int, float]:
    """Median seconds of the `window` tasks ending at each mark (task numbers)."""
    network = Network(seed=5, nodes=["honest"] * 3)
    network.add_app(cnx=(total + 10) * 30 * CNX)
    _one_task(network, 0)  # warm-up: first-use costs are not history
    durations: list[float] = []
    for number in range(1, total + 1):
        durations.append(_one_task(network, number))
        if progress is not None:
            progress(number)
    return {mark: statistics.median(durations[mark - window : mark]) for mark in marks if mark <= total}


def seconds_per_task_by_nodes(counts: tuple[int, ...] = (5, 50, 200), tasks: int = 5) -> dict[int, float]:
    figures: dict[int, float] = {}
    for count in counts:
        network = Network(seed=6, nodes=["honest"] * count)
        network.add_app(cnx=10**5 * CNX)
        _one_task(network, 0)  # warm-up
        figures[count] = statistics.median(_one_task(network, n) for n in range(1, tasks + 1))
    return figures
