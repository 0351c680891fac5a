"""Readable tables of a simulation report (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hydrogen_harness.sim.simulate import MOVEMENT_COLUMNS, SimulationReport, cnx

__all__ = ["print_report"]


def print_report(report: SimulationReport, console: Console) -> None:
    for task in report.tasks:
        title = f"Task {task.number} (id {task.task_id}): {task.outcome}"
        if task.abort_reason:
            title += f" ({task.abort_reason})"
        table = Table(title=title, title_justify="left", show_edge=False)
        table.add_column("step", justify="right")
        table.add_column("block", justify="right")
        table.add_column("actor")
        table.add_column("what")
        for entry in task.timeline:
            table.add_row(str(entry["step"]), str(entry["block"]), entry["actor"], entry["what"])
        console.print(table)
        console.print(
            f"  selected: {', '.join(task.selected_nodes) or '-'}; result node: {task.result_node or '-'}; "
            f"paid {cnx(task.fees_paid)} CNX, refunded {cnx(task.refunds)} CNX\n"
        )
    ledger = Table(title="Ledger (CNX, + received / - paid)", title_justify="left")
    ledger.add_column("party")
    for kind in MOVEMENT_COLUMNS:
        ledger.add_column(kind.value, justify="right")
    ledger.add_column("net", justify="right")
    for party, kinds in sorted(report.totals.items()):
        if set(kinds) <= {"transfer"}:
            continue  # wallet funding is set-up, not protocol
        values = [kinds.get(kind.value, 0) for kind in MOVEMENT_COLUMNS]
        ledger.add_row(party, *[cnx(v) if v else "" for v in values], cnx(sum(values)))
    console.print(ledger)
    nodes = Table(title="Nodes", title_justify="left")
    for column in ("name", "behaviour", "status", "CNX"):
        nodes.add_column(column)
    for node in report.nodes:
        nodes.add_row(node["name"], node["behaviour"], node["status"], cnx(node["cnx"]))
    console.print(nodes)
