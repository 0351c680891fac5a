"""Gas of each contract step, and createTask gas as the network grows."""

from __future__ import annotations

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import deploy
from hydrogen_harness.chain.gas_report import GasFigures, measure_gas
from hydrogen_harness.protocol.constants import CNX

__all__ = ["bench_gas", "create_task_gas_by_nodes"]


def create_task_gas_by_nodes(counts: tuple[int, ...] = (10, 100, 1000)) -> dict[int, int]:
    """createTask gas with `count` joined nodes (one chain, nodes added as it grows)."""
    deployment = deploy(Chain.in_memory(seed=3))
    app = deployment.new_app(cnx=10**6 * CNX, approve=10**6 * CNX)
    joined = 0
    gas: dict[int, int] = {}
    for count in sorted(counts):
        while joined < count:
            deployment.new_node()
            joined += 1
        with deployment.chain.isolation():
            created = deployment.task.create_task(app, count.to_bytes(32, "big"))
            gas[count] = int(created.receipt["gasUsed"])
    return gas


def bench_gas(counts: tuple[int, ...] = (10, 100, 1000)) -> tuple[GasFigures, dict[int, int]]:
    return measure_gas(), create_task_gas_by_nodes(counts)
