"""The sandbox's simulated nodes, acting in a background thread, and its task log.

Every `interval` seconds the loop reads the Task contract's new events, prints
each task's progress from them, hands them to every node and lets the nodes act
(each step is at most one transaction or Relay request per node), repeating
within the tick while anything moves, so that a task whose args are on the Relay
runs through in one tick. Nodes reach the Relay over HTTP, as real ones do.

Tasks that were in flight when a previous sandbox stopped are not resumed (a
node's work in progress lives in memory); once past their deadline one of the
sandbox's selected nodes cancels each of them, which refunds the application.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fakes.node import SimulatedNode
from fakes.relay import ChainSource
from harness.contracts import Deployment
from harness.events import (
    TaskAborted,
    TaskCreated,
    TaskEvent,
    TaskResultCommitmentsReady,
    TaskSuccess,
)
from harness.reverts import RevertError

__all__ = ["NodeLoop", "StaleTask", "describe_events"]

_MAX_ROUNDS = 25  # node steps per tick: a whole task takes about 10
_NOTEWORTHY = ("reverted", "failed", "error", "crashed", "cancel")


@dataclass
class StaleTask:
    """A task left in flight by an earlier run, to cancel once past its deadline."""

    task_id: int
    deadline: int
    selected_nodes: tuple[str, ...]


def describe_events(events: Sequence[TaskEvent], names: dict[str, str]) -> list[str]:
    """One line per task event; the 3 TaskCreated of a task (one transaction) make one line."""

    def name(address: str) -> str:
        return names.get(address, address)

    items: list[str | list[TaskCreated]] = []
    for event in events:
        if isinstance(event, TaskCreated):
            last = items[-1] if items else None
            if isinstance(last, list) and last[0].task_id == event.task_id:
                last.append(event)
            else:
                items.append([event])
        elif isinstance(event, TaskResultCommitmentsReady):
            items.append(f"task {event.task_id}: commitments ready (block {event.block_number})")
        elif isinstance(event, TaskSuccess):
            items.append(
                f"task {event.task_id}: success, result 0x{bytes(event.result).hex()} "
                f"from {name(event.result_node)} (block {event.block_number})"
            )
        elif isinstance(event, TaskAborted):
            items.append(f"task {event.task_id}: aborted: {event.reason} (block {event.block_number})")
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(item)
            continue
        rounds = sorted(item, key=lambda e: e.round)
        nodes = ", ".join(name(e.selected_node) for e in rounds)
        lines.append(f"task {rounds[0].task_id}: created by {name(rounds[0].creator)} (block {rounds[0].block_number}), nodes {nodes}")
    return lines


class NodeLoop:
    """Runs the nodes in a daemon thread; `stop()` ends it after the current tick."""

    def __init__(
        self,
        deployment: Deployment,
        nodes: Sequence[SimulatedNode],
        *,
        source: ChainSource,
        start_block: int,
        names: dict[str, str],
        log: Callable[[str], None],
        interval: float = 0.25,
        after_tick: Callable[[], None] | None = None,
        stale: Sequence[StaleTask] = (),
        verbose: bool = False,
    ) -> None:
        self.deployment = deployment
        self.nodes = list(nodes)
        self._source = source
        self._cursor = start_block
        self._names = names
        self._log = log
        self.interval = interval
        self._after_tick = after_tick
        self._stale = list(stale)
        self._verbose = verbose
        self._stop = threading.Event()
        self._reset = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-nodes", daemon=True)
        self._actions_seen = [0] * len(self.nodes)
        self.ticks = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> bool:
        """Ask the loop to stop and wait; True if it did within `timeout` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def request_reset(self) -> None:
        """Forget every task (after an evm_revert took the chain back): done at the next tick."""
        self._reset.set()

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # keep the nodes alive: report and carry on at the next tick
                self._log("node loop error:\n" + traceback.format_exc().rstrip())

    def tick(self) -> None:
        self.ticks += 1
        if self._reset.is_set():
            self._reset.clear()
            self._cursor = self._source.head() + 1
            for node in self.nodes:
                node.tasks.clear()
            self._log("chain reverted: nodes forget their tasks; the Relay starts afresh")
        for _ in range(_MAX_ROUNDS):
            if self._stop.is_set():
                break
            events = self._new_events()
            moved = False
            for node in self.nodes:
                node.observe(events)
            for node in self.nodes:
                moved |= node.step()
            self._report_actions()
            if not moved and not events:
                break
        self._sweep()
        if self._after_tick is not None:
            self._after_tick()

    def _new_events(self) -> list[TaskEvent]:
        head = self._source.head()
        if head < self._cursor:
            return []
        events = self._source.events(self._cursor, head)
        self._cursor = head + 1
        for line in describe_events(events, self._names):
            self._log(line)
        return events

    def _report_actions(self) -> None:
        """Node actions: failures always, the rest when verbose."""
        for index, node in enumerate(self.nodes):
            for task_id, what in node.actions[self._actions_seen[index]:]:
                if self._verbose or any(word in what for word in _NOTEWORTHY):
                    where = f"task {task_id}: " if task_id is not None else ""
                    self._log(f"  {node.name}: {where}{what}")
            self._actions_seen[index] = len(node.actions)

    def _sweep(self) -> None:
        """Cancel tasks an earlier run left in flight, once past their deadline."""
        if not self._stale:
            return
        now = self.deployment.chain.now()
        ours = {node.address: node for node in self.nodes}
        for task in list(self._stale):
            if now <= task.deadline:
                continue
            self._stale.remove(task)
            canceller = next((ours[a] for a in task.selected_nodes if a in ours), None)
            if canceller is None:
                self._log(f"task {task.task_id}: left from an earlier run, past its deadline; none of its nodes is running")
                continue
            try:
                self.deployment.task.cancel(canceller.account, task.task_id)
                self._log(f"task {task.task_id}: left from an earlier run; cancelled by {canceller.name}")
            except RevertError as exc:
                self._log(f"task {task.task_id}: cancel by {canceller.name} reverted: {exc.reason}")
