"""The hydrogen_sandbox fixture's figures: seconds per task for a user's client,
start-up seconds, and the cost of isolating a test.

Everything runs the way the plugin runs it (`SandboxOptions.for_tests`, one
`isolated()` block per test), in this process. The client is the example
application (examples/cnx_app: web3 + httpx, polling every 0.1 s), so a task is
timed as its user sees it: approve, createTask, upload, wait for TaskSuccess,
download the image.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions
from hydrogen_harness.sandbox.pool import DEFAULT_NODES

__all__ = ["bench_fixture", "isolation_seconds", "startup_seconds", "task_seconds"]

ROOT = Path(__file__).resolve().parent.parent
POOL = [*DEFAULT_NODES, "cheater"]  # what a suite with one cheater test would run
OTHER_NODES = ("honest", "cheater", "honest")  # a test that needs node changes
ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 1, "image_width": 256, "image_height": 256}}  # fmt: skip


def _figure(samples: Sequence[float], unit: str = "s") -> dict[str, Any]:
    return {
        "value": round(statistics.median(samples), 4),
        "unit": unit,
        "min": round(min(samples), 4),
        "max": round(max(samples), 4),
        "stdev": round(statistics.stdev(samples), 4) if len(samples) > 1 else 0.0,
        "runs": [round(s, 4) for s in samples],
    }


@contextmanager
def _sandbox(pool: list[str]) -> Iterator[Sandbox]:
    with tempfile.TemporaryDirectory() as folder:
        sandbox = Sandbox(SandboxOptions.for_tests(Path(folder), pool), log=lambda line: None)
        sandbox.start()
        try:
            sandbox.use_nodes(DEFAULT_NODES)  # the base state the plugin starts tests from
            yield sandbox
        finally:
            sandbox.close()


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def startup_seconds(runs: int = 3) -> dict[str, Any]:
    """Seconds from nothing to a sandbox a test can use (deploy, pool joined, servers up)."""
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        with _sandbox(POOL):
            samples.append(time.perf_counter() - began)
    return _figure(samples)


def task_seconds(sandbox: Sandbox, tasks: int = 10, poll: float = 0.1) -> dict[str, Any]:
    """Seconds per task for a client polling every `poll` s, each task in a test of its own."""
    sys.path.insert(0, str(ROOT / "examples" / "cnx_app"))
    try:
        from cnx_app import CnxApp  # the user's application: no import of this project
    finally:
        sys.path.pop(0)
    samples = []
    for _ in range(tasks):
        with sandbox.isolated(DEFAULT_NODES):
            wallet = sandbox.new_wallet(cnx=100 * CNX)
            token, task = sandbox.addresses["token"], sandbox.addresses["task"]
            with CnxApp(sandbox.rpc_url, sandbox.relay_url, token, task, wallet.key, poll=poll) as app:
                began = time.perf_counter()
                report = app.run(ARGS)
                samples.append(time.perf_counter() - began)
            if report.outcome != "success":
                raise RuntimeError(f"a benchmark task ended {report.outcome}: {report.reason}")
    return _figure(samples)


def isolation_seconds(sandbox: Sandbox, runs: int = 20) -> dict[str, Any]:
    """Seconds to set up and tear down one test: snapshot, node choice, revert (Relay and
    nodes reset), with the default nodes and with nodes to pause and resume."""

    def one_test(nodes: Sequence[str]) -> float:
        def run() -> None:
            with sandbox.isolated(nodes):
                pass

        return _timed(run)

    default = [one_test(DEFAULT_NODES) for _ in range(runs)]
    changed = [one_test(OTHER_NODES) for _ in range(runs)]
    return {"default_nodes": _figure(default), "other_nodes": _figure(changed)}


def bench_fixture(quick: bool = False) -> dict[str, Any]:
    """Every figure of the fixture, for `make bench` (`--quick`: fewer runs)."""
    startup = startup_seconds(runs=2 if quick else 3)
    with _sandbox(POOL) as sandbox:
        tasks = task_seconds(sandbox, tasks=3 if quick else 10)
        isolation = isolation_seconds(sandbox, runs=5 if quick else 20)
    median = tasks["value"]
    return {
        "startup_seconds": startup,
        "seconds_per_task_polling_0_1s": tasks,
        "isolation_seconds": isolation,
        "target": {"what": "median seconds per task through the fixture < 1 s", "ratio": median, "holds": median < 1.0},
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(bench_fixture(quick="--quick" in sys.argv), indent=2))
