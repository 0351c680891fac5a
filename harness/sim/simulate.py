"""`hydrogen-harness simulate`: N tasks through M simulated nodes, and the report.

Tasks run one after another (each settled before the next is created), so the
timeline of each task reads on its own. Everything in the report is derived from
the seed: two runs with one seed write identical reports.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.ledger import MovementKind
from hydrogen_harness.sim.network import Network, TimelineEntry
from hydrogen_harness.protocol.constants import CNX

__all__ = ["BACKENDS", "SimulationReport", "TaskReport", "default_task_args", "run_simulation"]

BACKENDS = ("eth-tester", "revm")  # the in-memory chains a simulation can run on

_SUBJECTS = ["a lighthouse at dusk", "a red fox in snow", "a city of glass", "an old map of the sea", "a robot tending a garden", "a bowl of ramen", "mountains under aurora"]
_STYLES = ["oil painting", "watercolour", "isometric render", "film photograph", "ink sketch"]


def default_task_args(rng: random.Random, images: int, size: int) -> dict[str, Any]:
    """Plausible Stable Diffusion args drawn from `rng`."""
    return {
        "base_model": rng.choice(["runwayml/stable-diffusion-v1-5", "stabilityai/stable-diffusion-xl-base-1.0"]),
        "prompt": f"{rng.choice(_SUBJECTS)}, {rng.choice(_STYLES)}",
        "negative_prompt": rng.choice(["", "blurry, low quality"]),
        "task_config": {
            "image_width": size,
            "image_height": size,
            "num_images": images,
            "seed": rng.randrange(2**31),
            "steps": rng.choice([20, 25, 30]),
            "cfg": rng.choice([5, 7]),
            "safety_checker": False,
        },
    }


@dataclass
class TaskReport:
    number: int
    task_id: int | None
    outcome: str
    abort_reason: str | None
    selected_nodes: list[str]
    result_node: str | None
    fees_paid: int
    refunds: int
    images: list[str]
    timeline: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SimulationReport:
    seed: int
    nodes: list[dict[str, Any]]
    tasks: list[TaskReport]
    ledger: list[dict[str, Any]]
    totals: dict[str, dict[str, int]]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def _names(network: Network) -> dict[str, str]:
    names = {node.address: node.name for node in network.nodes}
    names.update({app.address: app.name for app in network.apps})
    c = network.contracts
    names[c.task.address] = "Task contract"
    names[c.node.address] = "Node contract"
    if c.owner is not None:
        names[c.owner.address] = "owner"
    return names


def _entry(entry: TimelineEntry, names: dict[str, str]) -> dict[str, Any]:
    what = entry.what
    for address, name in names.items():
        what = what.replace(address, name)
    return {"step": entry.step, "block": entry.block, "time": entry.time, "actor": entry.actor, "what": what}


def run_simulation(
    tasks: int = 5,
    nodes: Sequence[str] = ("honest",) * 6,
    seed: int = 0,
    images: int = 2,
    size: int = 256,
    out: Path | None = None,
    progress: Callable[[int], None] | None = None,
    backend: str = "eth-tester",
) -> SimulationReport:
    """Run the simulation; write images and `report.json` under `out` if given.
    `backend` is the in-memory chain: "eth-tester" or "revm" (same report, faster)."""
    if tasks < 1:
        raise ValueError(f"tasks must be at least 1, got {tasks}")
    if len(nodes) < 3:
        raise ValueError(f"a task needs 3 nodes; got {len(nodes)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    rng = random.Random(seed)
    chain = Chain.revm(seed=seed) if backend == "revm" else Chain.in_memory(seed=seed)
    network = Network(seed=seed, nodes=list(nodes), chain=chain)
    app = network.add_app(cnx=tasks * 30 * CNX + 100 * CNX)
    names = _names(network)
    reports: list[TaskReport] = []
    for number in range(1, tasks + 1):
        start = len(network.timeline)
        if network.contracts.node.available_nodes() < 3:
            reports.append(TaskReport(number, None, "skipped", "fewer than 3 available nodes", [], None, 0, 0, []))
            continue
        key = app.submit(default_task_args(rng, images, size), key=f"task-{number}")
        network.settle()
        result = app.result(key)
        job = app.store.jobs[key]
        selected = [names.get(address, address) for address in result.selected_nodes]
        files: list[str] = []
        if out is not None:
            for index, image in enumerate(result.images):
                path = out / "images" / f"task{number}-{index}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(image)
                files.append(str(path.relative_to(out)))
        reports.append(
            TaskReport(
                number=number,
                task_id=job.task_id,
                outcome=result.outcome.value,
                abort_reason=result.abort_reason,
                selected_nodes=selected,
                result_node=names.get(result.result_node or "", result.result_node),
                fees_paid=result.fees_paid,
                refunds=result.refunds,
                images=files,
                timeline=[_entry(e, names) for e in network.timeline[start:]],
            )
        )
        if progress is not None:
            progress(number)
    network.ledger.sync()
    ledger = [
        {
            "block": m.block_number,
            "from": names.get(m.sender, m.sender),
            "to": names.get(m.receiver, m.receiver),
            "amount": m.amount,
            "kind": m.kind.value,
            "task_id": m.task_id,
        }
        for m in network.ledger.movements
    ]
    totals = {
        names.get(party, party): {kind.value: amount for kind, amount in kinds.items()}
        for party, kinds in network.ledger.totals_by_party().items()
    }
    node_rows = [
        {
            "name": node.name,
            "address": node.address,
            "behaviour": str(node.behaviour),
            "status": node.status().name,
            "cnx": network.contracts.token.balance_of(node.address),
        }
        for node in network.nodes
    ]
    report = SimulationReport(seed=seed, nodes=node_rows, tasks=reports, ledger=ledger, totals=totals)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(report.to_json())
    return report


def cnx(amount: int) -> str:
    """CNX units as a decimal CNX amount, for display."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), CNX)
    return f"{sign}{whole}" + (f".{str(frac).rjust(18, '0').rstrip('0')}" if frac else "")


MOVEMENT_COLUMNS = [MovementKind.ESCROW, MovementKind.FEE, MovementKind.REFUND, MovementKind.STAKE, MovementKind.STAKE_RETURNED, MovementKind.STAKE_SLASHED]
