"""The sandbox's simulated nodes, acting in a background thread, and its task log.

At each tick the loop reads the Task contract's new events, prints each task's
progress from them, hands them to every node and lets the nodes act (each step
is at most one transaction or Relay request per node), repeating within the tick
while anything moves, so that a task whose args are on the Relay runs through in
one tick. Within a round the nodes act at the same time, each in its own thread,
as separate node processes do: their transactions reach the chain together and
are mined in the same block. Nodes reach the Relay over HTTP, as real ones do.
A tick starts as soon
as someone calls `wake()` (the sandbox does on every mined block and on every
Relay upload by a client), else after `interval` seconds: nodes react at once
rather than at the next poll.

Tasks that were in flight when a previous sandbox stopped are not resumed (a
node's work in progress lives in memory); once past their deadline one of the
sandbox's selected nodes cancels each of them, which refunds the application.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

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

__all__ = ["LoopRecorder", "NodeLoop", "StaleTask", "describe_events", "described_events"]

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
    return [line for line, _, _ in described_events(events, names)]


def described_events(events: Sequence[TaskEvent], names: dict[str, str]) -> list[tuple[str, int, int]]:
    """As `describe_events`, each line with its task id and block number."""

    def name(address: str) -> str:
        return names.get(address, address)

    items: list[TaskEvent | list[TaskCreated]] = []
    for event in events:
        if isinstance(event, TaskCreated):
            last = items[-1] if items else None
            if isinstance(last, list) and last[0].task_id == event.task_id:
                last.append(event)
            else:
                items.append([event])
        elif isinstance(event, (TaskResultCommitmentsReady, TaskSuccess, TaskAborted)):
            items.append(event)
    lines = []
    for item in items:
        if isinstance(item, list):
            rounds = sorted(item, key=lambda e: e.round)
            first = rounds[0]
            nodes = ", ".join(name(e.selected_node) for e in rounds)
            line = f"task {first.task_id}: created by {name(first.creator)} (block {first.block_number}), nodes {nodes}"
            lines.append((line, first.task_id, first.block_number))
        elif isinstance(item, TaskResultCommitmentsReady):
            lines.append((f"task {item.task_id}: commitments ready (block {item.block_number})", item.task_id, item.block_number))
        elif isinstance(item, TaskSuccess):
            line = (
                f"task {item.task_id}: success, result 0x{bytes(item.result).hex()} "
                f"from {name(item.result_node)} (block {item.block_number})"
            )
            lines.append((line, item.task_id, item.block_number))
        elif isinstance(item, TaskAborted):
            lines.append((f"task {item.task_id}: aborted: {item.reason} (block {item.block_number})", item.task_id, item.block_number))
    return lines


class LoopRecorder(Protocol):
    """Where the loop reports what happened (the sandbox's timeline)."""

    def chain_event(self, line: str, task_id: int, block: int) -> None: ...

    def node_action(self, node: str, what: str, task_id: int | None) -> None: ...


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
        recorder: LoopRecorder | None = None,
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
        self._recorder = recorder
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Held for a whole tick: whoever holds it knows no node is acting.
        self._ticking = threading.RLock()
        self._reset_cursor: int | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox-nodes", daemon=True)
        self._workers = ThreadPoolExecutor(max_workers=max(1, len(self.nodes)), thread_name_prefix="sandbox-node")
        self._actions_seen = [0] * len(self.nodes)
        self.ticks = 0
        self.head = start_block - 1  # the chain's head as the loop last read it

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> bool:
        """Ask the loop to stop and wait; True if it did within `timeout` seconds."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        self._workers.shutdown(wait=stopped)
        return stopped

    def wake(self) -> None:
        """Start a tick now (or right after the current one). Cheap, callable from any thread."""
        self._wake.set()

    def request_reset(self) -> None:
        """Forget every task (after an evm_revert took the chain back): done at the next tick,
        reading events from the head as it is now (blocks mined meanwhile are not skipped)."""
        self._reset_cursor = self._source.head() + 1
        self._wake.set()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No tick runs inside this block (waits for the current one to end)."""
        with self._ticking:
            yield

    def reset(self) -> None:
        """Forget every task now and read events from the next block on (see `held`)."""
        with self._ticking:
            self._reset_cursor = None
            self._forget(self._source.head() + 1)

    def _forget(self, cursor: int) -> None:
        self._cursor = cursor
        for node in self.nodes:
            node.reset()
        self._actions_seen = [0] * len(self.nodes)

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()  # a wake during the tick is kept: it starts the next one
            if self._stop.is_set():
                break
            try:
                with self._ticking:
                    self.tick()
            except Exception:  # keep the nodes alive: report and carry on at the next tick
                self._log("node loop error:\n" + traceback.format_exc().rstrip())

    def tick(self) -> None:
        self.ticks += 1
        cursor, self._reset_cursor = self._reset_cursor, None
        if cursor is not None:
            self._forget(cursor)
            self._log("chain reverted: nodes forget their tasks; the Relay starts afresh")
        for _ in range(_MAX_ROUNDS):
            if self._stop.is_set():
                break
            events = self._new_events()
            for node in self.nodes:
                node.observe(events)
            moved = any(list(self._workers.map(SimulatedNode.step, self.nodes)))
            self._report_actions()
            if not moved and not events:
                break
        self._sweep()
        if self._after_tick is not None:
            self._after_tick()

    def _new_events(self) -> list[TaskEvent]:
        head = self._source.head()
        if head < self._cursor:
            self.head = head
            return []
        self.head = head
        events = self._source.events(self._cursor, head)
        self._cursor = head + 1
        for line, task_id, block in described_events(events, self._names):
            self._log(line)
            if self._recorder is not None:
                self._recorder.chain_event(line, task_id, block)
        return events

    def _report_actions(self) -> None:
        """Node actions: failures always, the rest when verbose."""
        for index, node in enumerate(self.nodes):
            for task_id, what in node.actions[self._actions_seen[index]:]:
                if self._recorder is not None:
                    self._recorder.node_action(node.name, what, task_id)
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
