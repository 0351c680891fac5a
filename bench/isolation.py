"""The plugin's per-test cost: what `hydrogen_contracts` and `hydrogen_network` add to
every test that uses them, on each in-memory backend.

`hydrogen_contracts` takes a snapshot before the test and reverts after it;
`hydrogen_network` does the same around building a `Network` (a Relay and three
joined nodes). Each measured test sends one CNX transfer inside the isolation, and
the bare transfer is timed alone in the same run, so the figure is the fixture's
share. The backends alternate run by run, so load drift falls on both alike.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sim.network import Network

__all__ = ["bench_isolation"]


def _one_test(deployment: Deployment, network: bool) -> tuple[float, float]:
    """(seconds of the whole test, seconds of its transfer alone)."""
    chain = deployment.chain
    began = time.perf_counter()
    with chain.isolation():
        if network:
            Network(seed=chain.seed, nodes=3, chain=chain, deployment=deployment)
        sent = time.perf_counter()
        deployment.token.transfer(chain.faucet, deployment.task.address, 1 * CNX)
        transfer = time.perf_counter() - sent
    return time.perf_counter() - began, transfer


def bench_isolation(quick: bool) -> dict[str, Any]:
    runs = 5 if quick else 30
    deployments = {"eth-tester": deploy(Chain.in_memory(seed=5)), "revm": deploy(Chain.revm(seed=5))}
    costs: dict[str, dict[str, list[float]]] = {name: {"contracts": [], "network": []} for name in deployments}
    for _ in range(runs):
        for fixture in ("contracts", "network"):
            for name, deployment in deployments.items():
                whole, transfer = _one_test(deployment, network=fixture == "network")
                costs[name][fixture].append((whole - transfer) * 1000)
    return {
        name: {
            f"hydrogen_{fixture}_ms": {
                "median": round(statistics.median(samples), 2),
                "min": round(min(samples), 2),
                "max": round(max(samples), 2),
                "runs": runs,
            }
            for fixture, samples in by_fixture.items()
        }
        for name, by_fixture in costs.items()
    }
