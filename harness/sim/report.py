"""Plain-text timeline and ledger, for the pytest report of a failing test.

The plugin appends both as report sections when a test using `hydrogen_sandbox`
or `hydrogen_network` fails, so the user sees what the network did: who acted,
what the chain said, which Relay calls failed, and where every CNX went.
Plain text (no colours, fixed columns) because pytest prints sections verbatim.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from hydrogen_harness.chain.ledger import Ledger, MovementKind
from hydrogen_harness.sim.network import TimelineEntry
from hydrogen_harness.protocol.constants import CNX

__all__ = ["ledger_text", "timeline_text"]

MAX_TIMELINE_LINES = 300  # the most recent ones; a polling client can write thousands


def _cnx(amount: int) -> str:
    return f"{amount / CNX:,.4f}".rstrip("0").rstrip(".")


def _name(address: str, names: dict[str, str]) -> str:
    return names.get(address, address[:10] + "..")


def timeline_text(entries: Sequence[TimelineEntry], limit: int = MAX_TIMELINE_LINES) -> str:
    """One line per entry: tick, block, chain time (UTC), actor, task, what."""
    if not entries:
        return "(nothing happened on the network)"
    shown = list(entries)[-limit:]
    lines = []
    if len(entries) > len(shown):
        lines.append(f"({len(entries) - len(shown)} earlier entries left out)")
    lines.append(f"{'step':>5} {'block':>6} {'time':8}  {'actor':10} {'task':>4}  what")
    for e in shown:
        clock = time.strftime("%H:%M:%S", time.gmtime(e.time))
        task = str(e.task_id) if e.task_id is not None else "-"
        lines.append(f"{e.step:>5} {e.block:>6} {clock:8}  {e.actor:10} {task:>4}  {e.what}")
    return "\n".join(lines)


def ledger_text(ledger: Ledger, names: dict[str, str]) -> str:
    """Every CNX movement (wallet funding left out), then the net per party and kind."""
    movements = [m for m in ledger.movements if m.kind is not MovementKind.TRANSFER]
    if not movements:
        return "(no CNX moved for any task)"
    lines = [f"{'block':>6} {'task':>4}  {'kind':15} {'from':16} {'to':16} {'CNX':>10}"]
    for m in movements:
        task = str(m.task_id) if m.task_id is not None else "-"
        lines.append(
            f"{m.block_number:>6} {task:>4}  {m.kind.value:15} {_name(m.sender, names):16} "
            f"{_name(m.receiver, names):16} {_cnx(m.amount):>10}"
        )
    lines.append("")
    lines.append("net CNX by party (+ received, - paid):")
    totals = ledger.totals_by_party()
    for party in sorted(totals, key=lambda p: _name(p, names)):
        kinds = {k: v for k, v in totals[party].items() if k is not MovementKind.TRANSFER and v}
        if kinds:
            parts = ", ".join(f"{k.value} {'+' if v > 0 else ''}{_cnx(v)}" for k, v in kinds.items())
            lines.append(f"  {_name(party, names):16} {parts}")
    return "\n".join(lines)
