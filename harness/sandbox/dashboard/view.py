"""What the dashboard shows, read from the running sandbox and its chain.

`DashboardView.refresh()` catches up with the chain and returns one JSON-able
snapshot: tasks (from the Task contract's events, with each task's timeline of
chain events, CNX movements and node actions), nodes (on-chain status, stake,
CNX earned and slashed), the ledger (CNX movements by party and by task, escrow
now) and the Relay faults armed. The work is incremental: events and transfers
are read from a block cursor (transfers through `hydrogen_harness.chain.ledger.Ledger`), and a
view call (about 9 ms each on the in-memory chain) is made only for what may have
changed: a node that sent a transaction (pause, resume, join, quit) or that an
event or a transfer names, a party whose CNX moved, a task with a new event or
transfer, the parameters after an owner's transaction. Everything else is read
again every `FULL_EVERY` seconds, a few per refresh, for changes that leave no
trace (a cancel of an already aborted, empty task). A chain taken back under the
view (evm_revert, the fixture's isolation between tests) is noticed by the hash of
the last block read, and the view starts afresh.

Amounts are decimal strings of CNX units: JSON numbers lose precision past 2**53.
Only addresses, names and chain data enter a snapshot, never a key.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from hydrogen_harness.chain.abi_calls import FunctionTable
from hydrogen_harness.protocol.events import AbortReason, TaskAborted, TaskCreated, TaskEvent, TaskResultCommitmentsReady, TaskSuccess
from hydrogen_harness.chain.ledger import Ledger, Movement, MovementKind
from hydrogen_harness.sim.network import TimelineEntry
from hydrogen_harness.protocol.constants import STAKE_AMOUNT, NodeStatus
from hydrogen_harness.client.relay import RelayTaskStatus
from hydrogen_harness.protocol.reverts import RevertError

if TYPE_CHECKING:
    from hydrogen_harness.chain.contracts import Deployment
    from hydrogen_harness.sandbox.core import Sandbox

__all__ = ["DashboardView", "TaskStatus"]

TASKS_SHOWN = 50  # newest tasks in a snapshot (counts cover them all)
MOVEMENTS_SHOWN = 100  # newest CNX movements in a snapshot
ACTIVITY_SHOWN = 40  # newest timeline entries in a snapshot
EVENTS_PER_TASK = 80  # a task's timeline is cut to its newest entries beyond this
FULL_EVERY = 10.0  # seconds between re-reads of what shows no change
STALE_READS = 8  # nodes, and live tasks, re-read per refresh for that
SENDERS_UP_TO = 64  # new blocks whose senders are read; after a longer gap all is re-read
_PAGE = 5_000  # blocks per log query when catching up with a long history


class TaskStatus(str, Enum):
    """Where a task stands, from its events (a cancel after success reads "cancelled")."""

    CREATED = "created"
    COMMITMENTS_READY = "commitments ready"
    SUCCESS = "success"
    ABORTED = "aborted"
    CANCELLED = "cancelled"


@dataclass
class _Entry:
    """One line of a task's timeline; `order` sorts entries within a block."""

    block: int
    order: int
    time: int
    actor: str
    what: str

    def as_json(self) -> dict[str, Any]:
        return {"block": self.block, "time": self.time, "actor": self.actor, "what": self.what}


@dataclass
class _Task:
    task_id: int
    creator: str
    created_block: int
    created_time: int
    nodes: list[str] = field(default_factory=lambda: ["", "", ""])
    status: TaskStatus = TaskStatus.CREATED
    succeeded: bool = False
    abort_reason: str | None = None
    result_node: str | None = None
    result: bytes = b""
    events: list[_Entry] = field(default_factory=list)
    deadline: int | None = None
    on_chain: bool = True  # getTask still finds it (deleted once every node is settled)
    balance: int = 0  # getTask(id).balance while on chain
    images: int = 0
    slashed: list[str] = field(default_factory=list)
    escrowed: int = 0
    paid: dict[str, int] = field(default_factory=dict)
    refunded: int = 0
    stakes_slashed: int = 0


@dataclass
class _Node:
    address: str
    status: NodeStatus | None = None
    task: int = 0
    staked: int = 0
    returned: int = 0
    earned: int = 0
    slashed_in: list[int] = field(default_factory=list)


def _units(value: int) -> str:
    return str(int(value))


class DashboardView:
    """Snapshots of a running `Sandbox` for the dashboard; thread-safe (see the module docstring)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._reset()

    # ------------------------------------------------------------ state

    def _reset(self) -> None:
        self._cursor: int | None = None  # next block to read events from
        self._anchor: tuple[int, bytes] | None = None  # the last block read, and its hash
        self._ledger: Ledger | None = None
        self._tasks: OrderedDict[int, _Task] = OrderedDict()
        self._nodes: dict[str, _Node] = {}
        self._parties: dict[str, dict[MovementKind, int]] = {}
        self._balances: dict[str, int] = {}
        self._movements: list[Movement] = []
        self._movement_count = 0
        self._pending_slashes: list[Movement] = []
        self._times: dict[int, int] = {}
        self._params: dict[str, Any] = {}
        # What to read again: changed (read at once) and stale (a few per refresh).
        self._changed_nodes: set[str] = set()
        self._changed_parties: set[str] = set()
        self._changed_tasks: set[int] = set()
        self._stale_nodes: list[str] = []
        self._stale_tasks: list[int] = []
        self._params_changed = True
        self._last_full = time.monotonic()

    def _deployment(self) -> Deployment:
        return self.sandbox._deployed()

    def _start_block(self) -> int:
        deployment = self.sandbox.info.get("deployment") or {}
        block = deployment.get("block")
        return int(block) if isinstance(block, int) else 0

    def _time_of(self, block: int) -> int:
        if block not in self._times:
            if len(self._times) > 50_000:
                self._times.clear()
            self._times[block] = self._deployment().chain.block_timestamp(block)
        return self._times[block]

    def _name(self, address: str | None) -> str:
        if not address:
            return ""
        return self._names.get(address, address[:8] + "…" + address[-4:])

    # ------------------------------------------------------------ refresh

    def refresh(self) -> dict[str, Any]:
        """Catch up with the chain and return a snapshot (see the module docstring)."""
        with self._lock:
            self._names = self.sandbox.names  # a copy: wallets are named as tests make them
            deployment = self._deployment()
            chain = deployment.chain
            head = chain.block_number
            if self._anchor is not None and not self._still_there(head):
                self._reset()
            if self._cursor is None:
                self._cursor = self._start_block()
                self._ledger = Ledger(deployment, from_block=self._cursor)
                for node in self.sandbox.all_nodes:
                    self._node(node.address)
            if time.monotonic() - self._last_full > FULL_EVERY:
                self._last_full = time.monotonic()
                self._stale_nodes = list(self._nodes)
                self._stale_tasks = [t.task_id for t in self._tasks.values() if t.on_chain]
                self._params_changed = True
            if head >= self._cursor:
                assert self._ledger is not None
                # The ledger reads up to the head as it finds it, maybe a block or two on:
                # read the events as far, so a transfer never comes before its task's creation.
                movements = self._ledger.sync()
                last = max([head, *(m.block_number for m in movements)])
                self._note_senders(self._cursor, last)
                for start in range(self._cursor, last + 1, _PAGE):
                    self._apply_events(deployment.task.events_between(start, min(last, start + _PAGE - 1)))
                self._cursor = last + 1
                self._anchor = (last, self._hash(last))
                self._apply_movements(movements)
                head = last
            self._settle_slashes()
            # The views at the block the events and transfers were read up to, not at the
            # latest: a task deleted, a node freed or a fee paid in a block mined since
            # must not show before that block's events and transfers do.
            self._read_tasks(head)
            self._read_nodes(head)
            self._read_balances(head)
            self._read_params(head)
            return self._snapshot(head, chain.now())

    def _note_senders(self, first: int, last: int) -> None:
        """Nodes that sent a transaction other than to the Task contract in these blocks
        (pause, resume, join, quit: no event), and whether the owner sent any (the
        parameters). What a node's Task call changes shows in events and transfers."""
        if last - first >= SENDERS_UP_TO:
            self._changed_nodes.update(self._nodes)
            self._params_changed = True
            return
        deployment = self._deployment()
        owner = deployment.owner.address if deployment.owner is not None else None
        task = deployment.task.address
        for number in range(first, last + 1):
            block: Any = deployment.chain.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                sender = tx["from"]
                if sender in self._nodes and tx.get("to") != task:
                    self._changed_nodes.add(sender)
                elif sender == owner:
                    self._params_changed = True

    def _hash(self, block: int) -> bytes:
        found = self._deployment().chain.block_hash(block)
        if found is None:
            raise LookupError(f"the chain has no block {block}")
        return found

    def _still_there(self, head: int) -> bool:
        assert self._anchor is not None
        block, block_hash = self._anchor
        return head >= block and self._hash(block) == block_hash

    # ------------------------------------------------------------ events

    def _apply_events(self, events: Iterable[TaskEvent]) -> None:
        for event in events:
            if isinstance(event, TaskCreated):
                task = self._tasks.get(event.task_id)
                if task is None:
                    task = _Task(event.task_id, event.creator, event.block_number, self._time_of(event.block_number))
                    self._tasks[event.task_id] = task
                    self._changed_tasks.add(event.task_id)
                if 0 <= event.round < 3:
                    task.nodes[event.round] = event.selected_node
                self._node(event.selected_node)
                if event.round == 2:
                    nodes = ", ".join(self._name(a) for a in task.nodes)
                    self._add(task, event, "chain", f"created by {self._name(event.creator)}; nodes {nodes}")
                continue
            task = self._tasks.get(event.task_id)
            if task is None:
                continue  # created before the view's first block
            self._changed_tasks.add(task.task_id)
            if not isinstance(event, TaskResultCommitmentsReady):  # nodes freed, paid or slashed
                self._changed_nodes.update(a for a in task.nodes if a)
            if isinstance(event, TaskResultCommitmentsReady):
                if task.status is TaskStatus.CREATED:
                    task.status = TaskStatus.COMMITMENTS_READY
                self._add(task, event, "chain", "commitments ready")
            elif isinstance(event, TaskSuccess):
                task.succeeded = True
                task.status = TaskStatus.SUCCESS
                task.result_node = event.result_node
                task.result = bytes(event.result)
                self._add(task, event, "chain", f"success: result 0x{task.result.hex()} from {self._name(event.result_node)}")
            elif isinstance(event, TaskAborted):
                task.abort_reason = event.reason
                task.status = TaskStatus.CANCELLED if event.reason == AbortReason.CANCELLED else TaskStatus.ABORTED
                self._add(task, event, "chain", f"aborted: {event.reason}")

    def _add(self, task: _Task, event: TaskEvent | Movement, actor: str, what: str) -> None:
        block = event.block_number
        task.events.append(_Entry(block, event.log_index, self._time_of(block), actor, what))

    def _node(self, address: str) -> _Node:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = _Node(address)
            self._changed_parties.add(address)
        self._changed_nodes.add(address)
        return node

    # ------------------------------------------------------------ CNX movements

    def _apply_movements(self, movements: list[Movement]) -> None:
        for m in movements:
            for party, sign in ((m.sender, -1), (m.receiver, 1)):
                kinds = self._parties.setdefault(party, {})
                kinds[m.kind] = kinds.get(m.kind, 0) + sign * m.amount
                self._changed_parties.add(party)
            self._movement_count += 1
            self._movements.append(m)
            if len(self._movements) > 2 * MOVEMENTS_SHOWN:
                del self._movements[:MOVEMENTS_SHOWN]
            if m.kind is MovementKind.STAKE:
                self._node(m.sender).staked += m.amount
            elif m.kind is MovementKind.STAKE_RETURNED:
                self._node(m.receiver).returned += m.amount
            task = self._tasks.get(m.task_id) if m.task_id is not None else None
            if task is not None:
                self._changed_tasks.add(task.task_id)
                if m.kind in (MovementKind.REFUND, MovementKind.STAKE_SLASHED):  # a node freed or slashed
                    self._changed_nodes.update(a for a in task.nodes if a)
            amount = f"{m.amount / 10**18:g} CNX"
            if m.kind is MovementKind.FEE:
                self._node(m.receiver).earned += m.amount
                if task is not None:
                    task.paid[m.receiver] = task.paid.get(m.receiver, 0) + m.amount
                    self._add(task, m, "ledger", f"fee {amount} paid to {self._name(m.receiver)}")
            elif m.kind is MovementKind.ESCROW and task is not None:
                task.escrowed += m.amount
                self._add(task, m, "ledger", f"{amount} escrowed from {self._name(m.sender)}")
            elif m.kind is MovementKind.REFUND and task is not None:
                task.refunded += m.amount
                self._add(task, m, "ledger", f"{amount} refunded to {self._name(m.receiver)}")
            elif m.kind is MovementKind.STAKE_SLASHED:
                if task is not None:
                    task.stakes_slashed += m.amount
                self._pending_slashes.append(m)

    def _settle_slashes(self) -> None:
        """Name the node each slashed stake came from: a selected node of the task that
        was still staked the block before and had left the network at the slash's block."""
        pending, self._pending_slashes = self._pending_slashes, []
        if not pending:
            return
        deployment = self._deployment()
        registry = FunctionTable(deployment.node.address, deployment.node.abi)
        for m in pending:
            task = self._tasks.get(m.task_id) if m.task_id is not None else None
            if task is None:
                continue
            for address in task.nodes:
                if not address or address in task.slashed:
                    continue
                try:
                    before = int(deployment.chain.call(registry.call("getNodeStatus", address), block=m.block_number - 1))
                    after = int(deployment.chain.call(registry.call("getNodeStatus", address), block=m.block_number))
                except (RevertError, ValueError):
                    continue  # a chain that keeps no history: the slash stays unnamed
                if before != NodeStatus.QUIT and after == NodeStatus.QUIT and not self._quit_with_stake(address, m):
                    task.slashed.append(address)
                    self._node(address).slashed_in.append(task.task_id)
                    amount = f"{m.amount / 10**18:g} CNX"
                    self._add(task, m, "ledger", f"{self._name(address)} slashed: stake of {amount} to {self._name(m.receiver)}")
                    break

    def _quit_with_stake(self, address: str, slash: Movement) -> bool:
        """The node left in that block by quitting (its stake came back), not by a slash."""
        return any(
            m.kind is MovementKind.STAKE_RETURNED and m.receiver == address and m.block_number == slash.block_number
            for m in self._movements
        )

    # ------------------------------------------------------------ what has no event

    def _read_tasks(self, block: int) -> None:
        deployment = self._deployment()
        stale, self._stale_tasks = self._stale_tasks[:STALE_READS], self._stale_tasks[STALE_READS:]
        for task_id in self._changed_tasks | set(stale):
            task = self._tasks.get(task_id)
            if task is None or not task.on_chain:
                continue
            info = deployment.task.get_task(task.task_id, block=block)
            if info.exists:
                task.deadline, task.balance = info.timeout, info.balance
            else:
                task.on_chain, task.balance = False, 0
        self._changed_tasks.clear()
        relay = self.sandbox._relay
        for task in list(self._tasks.values())[-TASKS_SHOWN:]:
            if relay is not None and task.succeeded and not task.images:
                record = relay.task(task.task_id)  # the Relay's database: no chain call
                if record is not None and record.status is RelayTaskStatus.RESULTS_UPLOADED:
                    task.images = record.image_count

    def _read_nodes(self, block: int) -> None:
        for simulated in self.sandbox.all_nodes:
            if simulated.address not in self._nodes:
                self._node(simulated.address)
        stale, self._stale_nodes = self._stale_nodes[:STALE_READS], self._stale_nodes[STALE_READS:]
        deployment = self._deployment()
        for address in self._changed_nodes | set(stale):
            node = self._nodes[address]
            node.status = deployment.node.status(address, block=block)
            node.task = deployment.task.node_task(address, block=block)
        self._changed_nodes.clear()

    def _read_balances(self, block: int) -> None:
        token = self._deployment().token
        for party in self._changed_parties:
            if int(party, 16) != 0:
                self._balances[party] = token.balance_of(party, block=block)
        self._changed_parties.clear()

    def _read_params(self, block: int) -> None:
        if not self._params_changed:
            return
        task = self._deployment().task
        self._params = {
            "task_fee": _units(task.fee_per_node(block=block)),
            "timeout": task.timeout(block=block),
            "distance_threshold": task.distance_threshold(block=block),
        }
        self._params_changed = False

    # ------------------------------------------------------------ the snapshot

    def _snapshot(self, head: int, now: int) -> dict[str, Any]:
        deployment = self._deployment()
        info = self.sandbox.info
        escrow_now = self._balances.get(deployment.task.address, 0)
        tasks = list(self._tasks.values())
        shown = tasks[-TASKS_SHOWN:]
        timeline = self.sandbox.timeline
        actions = self._actions({task.task_id: task.created_block for task in shown}, timeline)
        counts: dict[str, int] = {status.value: 0 for status in TaskStatus}
        for task in tasks:
            counts[task.status.value] += 1
        return {
            "network": {
                "chain": self.sandbox.options.mode,
                "chain_id": info.get("chain_id"),
                "rpc_url": info.get("rpc_url"),
                "relay_url": info.get("relay_url"),
                "contracts": dict(info.get("contracts") or {}),
                "block": head,
                "time": now,
                **self._params,
            },
            "counts": {"tasks": len(tasks), **counts},
            "tasks": [self._task_json(task, now, actions.get(task.task_id, [])) for task in reversed(shown)],
            "nodes": self._nodes_json(),
            "ledger": {
                "escrow_now": _units(escrow_now),
                "parties": self._parties_json(),
                "tasks": [self._task_money_json(task) for task in reversed(shown)],
                "movements": [self._movement_json(m) for m in reversed(self._movements[-MOVEMENTS_SHOWN:])],
                "movement_count": self._movement_count,
            },
            "faults": [
                {"server": f.server, "method": f.method, "path": getattr(f.path, "pattern", f.path),
                 "effect": f.effect, "remaining": f.remaining, "calls": f.calls}
                for f in self.sandbox.faults.armed
            ],  # fmt: skip
            "activity": [
                {"block": e.block, "time": e.time, "actor": e.actor, "what": e.what, "task_id": e.task_id}
                for e in reversed(timeline[-ACTIVITY_SHOWN:])
            ],
        }

    def _task_json(self, task: _Task, now: int, actions: list[_Entry]) -> dict[str, Any]:
        entries = sorted(task.events + actions, key=lambda e: (e.block, e.order))[-EVENTS_PER_TASK:]
        rounds = []
        for index, address in enumerate(task.nodes):
            outcome = "slashed" if address in task.slashed else "paid" if address in task.paid else ""
            rounds.append({"round": index, "address": address, "name": self._name(address), "outcome": outcome})
        return {
            "id": task.task_id,
            "creator": task.creator,
            "creator_name": self._name(task.creator),
            "nodes": rounds,
            "status": task.status.value,
            "succeeded": task.succeeded,
            "abort_reason": task.abort_reason,
            "result_node": task.result_node,
            "result_node_name": self._name(task.result_node),
            "result": "0x" + task.result.hex() if task.result else None,
            "created_block": task.created_block,
            "created_time": task.created_time,
            "deadline": task.deadline,
            "on_chain": task.on_chain,
            "cancellable": task.on_chain and task.deadline is not None and now > task.deadline,
            "escrow_now": _units(task.balance),
            "images": task.images,
            "slashed": list(task.slashed),
            "events": [e.as_json() for e in entries],
        }

    @staticmethod
    def _actions(created: dict[int, int], timeline: list[TimelineEntry]) -> dict[int, list[_Entry]]:
        """What nodes and clients did for each task (task id -> its creation block), from the
        sandbox's timeline: node actions, Relay requests that succeeded (not the polls that
        waited) and injected faults."""
        found: dict[int, list[_Entry]] = {}
        for entry in timeline:
            task_id = entry.task_id
            if task_id is None or task_id not in created or entry.actor in ("chain", "clock") or entry.block < created[task_id]:
                continue
            request = entry.what.startswith(("relay ", "rpc "))
            if request and "injected fault" not in entry.what and " -> 2" not in entry.what:
                continue
            found.setdefault(task_id, []).append(_Entry(entry.block, 1_000_000 + entry.step, entry.time, entry.actor, entry.what))
        return found

    def _task_money_json(self, task: _Task) -> dict[str, Any]:
        paid = sum(task.paid.values())
        return {
            "task_id": task.task_id,
            "escrowed": _units(task.escrowed),
            "paid": _units(paid),
            "paid_to": [{"address": a, "name": self._name(a), "amount": _units(v)} for a, v in task.paid.items()],
            "refunded": _units(task.refunded),
            "stakes_slashed": _units(task.stakes_slashed),
            "escrow_now": _units(task.escrowed - paid - task.refunded),
        }

    def _nodes_json(self) -> list[dict[str, Any]]:
        simulated = {node.address: node for node in self.sandbox.all_nodes}
        rows = []
        ordered = list(simulated) + [a for a in self._nodes if a not in simulated]
        for address in ordered:
            node = self._nodes.get(address) or _Node(address)
            sim = simulated.get(address)
            status = node.status
            stake = STAKE_AMOUNT if status is not None and status is not NodeStatus.QUIT else 0
            rows.append({
                "name": self._name(address),
                "address": address,
                "simulated": sim is not None,
                "behaviour": str(sim.behaviour) if sim is not None else "external",
                "crashed": bool(sim is not None and sim.crashed),
                "offline": bool(sim is not None and sim.behaviour.offline),
                "status": status.name.lower().replace("_", " ") if status is not None else "unknown",
                "task": node.task,
                "stake": _units(stake),
                "earned": _units(node.earned),
                "slashed": _units(max(0, node.staked - node.returned - stake)),
                "slashed_in": list(node.slashed_in),
                "balance": _units(self._balances.get(address, 0)),
            })  # fmt: skip
        return rows

    def _parties_json(self) -> list[dict[str, Any]]:
        rows = []
        deployment = self._deployment()
        simulated = {node.address for node in self.sandbox.all_nodes}
        last = [deployment.task.address, deployment.node.address, deployment.owner.address if deployment.owner else ""]

        def place(party: str) -> tuple[int, int]:
            # Applications first, then nodes, then the contracts and the owner (the supply).
            if party in last:
                return 3, last.index(party)
            return (2 if party in simulated or party in self._nodes else 1), 0

        for party, kinds in sorted(self._parties.items(), key=lambda item: place(item[0])):
            if int(party, 16) == 0:
                continue  # the mint's sender
            rows.append({
                "address": party,
                "name": self._name(party),
                "balance": _units(self._balances.get(party, 0)),
                "net": {kind.value: _units(amount) for kind, amount in kinds.items()},
                "total": _units(sum(kinds.values())),
            })  # fmt: skip
        return rows

    def _movement_json(self, m: Movement) -> dict[str, Any]:
        return {
            "block": m.block_number,
            "time": self._time_of(m.block_number),
            "kind": m.kind.value,
            "from": m.sender,
            "from_name": self._name(m.sender),
            "to": m.receiver,
            "to_name": self._name(m.receiver),
            "amount": _units(m.amount),
            "task_id": m.task_id,
            "tx": m.tx_hash,
        }
