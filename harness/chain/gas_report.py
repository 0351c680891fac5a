"""Gas used by each step of a task on the reference contracts (`make contracts`)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.constants import CNX, commitment_of

__all__ = ["GasFigures", "measure_gas", "print_gas_report"]


@dataclass(frozen=True)
class GasFigures:
    create_task: int
    commit: int
    disclose_first: int
    disclose_success: int
    disclose_third: int
    report_uploaded: int
    cancel: int


def _nodes_by_address(nodes: list[LocalAccount]) -> dict[str, LocalAccount]:
    return {n.address: n for n in nodes}


def measure_gas(extra_nodes: int = 0) -> GasFigures:
    """Run one honest task and one cancelled task; gas of each transaction kind."""
    deployment: Deployment = deploy(Chain.in_memory(seed=0))
    nodes = _nodes_by_address([deployment.new_node() for _ in range(3 + extra_nodes)])
    app = deployment.new_app(cnx=1000 * CNX, approve=1000 * CNX)
    task = deployment.task

    created = task.create_task(app, b"\x11" * 32)
    result = bytes(8)
    commits = []
    for round_, address in enumerate(created.selected_nodes):
        nonce = round_.to_bytes(1, "big") * 32 if round_ else b"\x09" * 32
        commits.append(task.submit_commitment(nodes[address], created.task_id, round_, commitment_of(result, nonce), nonce))
    discloses = [task.disclose(nodes[a], created.task_id, r, result) for r, a in enumerate(created.selected_nodes)]
    report = task.report_uploaded(nodes[created.selected_nodes[0]], created.task_id, 0)

    stale = task.create_task(app, b"\x22" * 32)
    deployment.chain.advance(task.timeout() + 1)
    cancel = task.cancel(app, stale.task_id)
    return GasFigures(
        create_task=int(created.receipt["gasUsed"]),
        commit=max(int(r["gasUsed"]) for r in commits),
        disclose_first=int(discloses[0]["gasUsed"]),
        disclose_success=int(discloses[1]["gasUsed"]),
        disclose_third=int(discloses[2]["gasUsed"]),
        report_uploaded=int(report["gasUsed"]),
        cancel=int(cancel["gasUsed"]),
    )


def print_gas_report() -> None:
    from rich.console import Console
    from rich.table import Table

    figures = measure_gas()
    table = Table(title="Gas of the Task contract (honest task, then a cancelled one)")
    table.add_column("transaction")
    table.add_column("gas used", justify="right")
    for label, value in (
        ("createTask", figures.create_task),
        ("submitTaskResultCommitment (max of 3)", figures.commit),
        ("discloseTaskResult (1st)", figures.disclose_first),
        ("discloseTaskResult (2nd: TaskSuccess)", figures.disclose_success),
        ("discloseTaskResult (3rd)", figures.disclose_third),
        ("reportResultsUploaded", figures.report_uploaded),
        ("cancelTask (no work done)", figures.cancel),
    ):
        table.add_row(label, f"{value:,}")
    Console().print(table)
