"""Small measuring helpers shared by the benchmarks: medians of repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Figure", "timed"]


@dataclass(frozen=True)
class Figure:
    """One measured figure: the median of `runs`, with the unit and every run."""

    name: str
    value: float
    unit: str
    runs: list[float]

    @classmethod
    def median_of(cls, name: str, unit: str, samples: list[float]) -> Figure:
        return cls(name, statistics.median(samples), unit, samples)

    def as_json(self) -> dict[str, object]:
        return {"value": round(self.value, 4), "unit": self.unit, "runs": [round(r, 4) for r in self.runs]}


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
