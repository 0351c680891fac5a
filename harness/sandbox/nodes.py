"""The sandbox's simulated nodes, each acting in its own thread, and its task log.

As separate node processes do, each node acts on its own: a thread per node takes
in the Task events that concern it and performs its actions one after another
(each step is at most one transaction or Relay request) for as long as it has
something to do, then sleeps until woken. One reader thread follows the chain:
on each pass (a "tick") it reads the Task contract's new events once, prints each
task's progress from them, hands them to the nodes and wakes the nodes that have
work (new events, tasks in flight, requests). A tick starts as soon as someone
calls `wake()` (the sandbox does on every mined block and on every Relay upload by
a client), else after `interval` seconds. So a node reacts at once to what
concerns it, never waits for another node's transaction to be mined, and an idle
node costs nothing: with 30 nodes, only the 3 selected for a task act on it.

Tasks that were in flight when a previous sandbox stopped are resumed by their
nodes from the nodes' stores (`SimulatedNode.resume`); those a node cannot
resume (it committed, but the result it committed to was not saved) are
`StaleTask`s: once past their deadline one of the sandbox's selected nodes
cancels each of them, which refunds the application and frees the nodes.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from hydrogen_harness.fakes.node import SimulatedNode
from hydrogen_harness.chain.event_feed import ChainSource, EventFeed
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.actions import ActionCursor, ActionKind
from hydrogen_harness.protocol.events import (
    TaskAborted,
    TaskCreated,
    TaskEvent,
    TaskResultCommitmentsReady,
    TaskSuccess,
)
from hydrogen_harness.protocol.reverts import RevertError

__all__ = ["LoopRecorder", "NodeLoop", "StaleTask", "describe_events", "described_events"]

_MAX_ACTIONS = 25  # steps in a row before a node looks at its wake-up again (a task takes about 5)
# Logged even when not verbose: what went wrong, and the error reports and cancels that follow.
_NOTEWORTHY = frozenset({ActionKind.FAILURE, ActionKind.ERROR_REPORT, ActionKind.CANCEL})


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


class _NodeWorker:
    """One node's thread: its inbox of events, its wake-up, and the lock it acts under."""

    def __init__(self, loop: NodeLoop, index: int, node: SimulatedNode) -> None:
        self.loop = loop
        self.index = index
        self.node = node
        self.inbox: deque[TaskEvent] = deque()
        self.wake = threading.Event()
        # Held while the node acts: `NodeLoop.held()` takes every node's to hold them all still.
        self.acting = threading.RLock()
        self.has_work = False  # written by this worker only, read by the reader
        self.actions = ActionCursor(node)
        self.thread = threading.Thread(target=self._run, name=f"sandbox-{node.name}", daemon=True)

    def _run(self) -> None:
        # A wake while acting is kept: it brings the node round again.
        _serve(self.loop._stop, self.wake, None, self.acting, self.act, self.node.name, self.loop._log)

    def act(self) -> None:
        """Take in the events, then act until there is nothing left to do (call under `acting`)."""
        loop = self.loop
        for _ in range(_MAX_ACTIONS):
            if loop._stop.is_set() or loop._reset_cursor is not None:
                break  # a revert: the reader forgets every task first
            self.take_events()
            moved = self.node.step()
            self.report_actions()
            if not moved and not self.inbox:
                break
        else:
            self.wake.set()  # still busy: round again
        node = self.node
        self.has_work = node.has_requests or (not node.crashed and not node.behaviour.offline and bool(node.active()))

    def take_events(self) -> None:
        events: list[TaskEvent] = []
        while self.inbox:
            events.append(self.inbox.popleft())
        if events:
            self.node.observe(events)

    def report_actions(self) -> None:
        """Node actions: failures always, the rest when verbose."""
        loop, node = self.loop, self.node
        for action in self.actions.new():
            if loop._recorder is not None:
                loop._recorder.node_action(node.name, action.what, action.task_id)
            if loop._verbose or action.kind in _NOTEWORTHY:
                where = f"task {action.task_id}: " if action.task_id is not None else ""
                loop._log(f"  {node.name}: {where}{action.what}")

    def forget(self) -> None:
        self.inbox.clear()
        self.node.reset()
        self.actions.reset()
        self.has_work = False


def _serve(
    stop: threading.Event,
    wake: threading.Event,
    interval: float | None,
    lock: contextlib.AbstractContextManager[object],
    work: Callable[[], None],
    name: str,
    log: Callable[[str], None],
) -> None:
    """A thread's life: wait for a wake (or `interval` seconds), then `work` under
    `lock`, until `stop`. An error is logged and the thread carries on at its next
    wake, so one bad pass never stops a node."""
    while not stop.is_set():
        wake.wait(interval)
        wake.clear()
        if stop.is_set():
            break
        try:
            with lock:
                work()
        except Exception:
            log(f"{name} error:\n" + traceback.format_exc().rstrip())


class NodeLoop:
    """Runs the reader and one thread per node (daemons); `stop()` ends them."""

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
        self._feed = EventFeed(source, start_block)
        self._names = names
        self._log = log
        self.interval = interval
        self._after_tick = after_tick
        self._stale = list(stale)
        self._verbose = verbose
        self._recorder = recorder
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Held for a whole reader pass (and by `held()`).
        self._ticking = threading.RLock()
        self._reset_cursor: int | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox-nodes", daemon=True)
        self._workers = [_NodeWorker(self, index, node) for index, node in enumerate(self.nodes)]
        self.ticks = 0
        self.head = start_block - 1  # the chain's head as the loop last read it

    def start(self) -> None:
        for worker in self._workers:
            worker.has_work = bool(worker.node.active())  # resumed tasks
            worker.thread.start()
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> bool:
        """Ask every thread to stop and wait; True if all did within `timeout` seconds."""
        self._stop.set()
        self._wake.set()
        for worker in self._workers:
            worker.wake.set()
        ends = time.monotonic() + timeout
        for thread in [self._thread, *(w.thread for w in self._workers)]:
            if thread.is_alive():
                thread.join(max(0.0, ends - time.monotonic()))
        return not any(t.is_alive() for t in [self._thread, *(w.thread for w in self._workers)])

    def wake(self) -> None:
        """Start a tick now (or right after the current one). Cheap, callable from any thread."""
        self._wake.set()

    def request_reset(self) -> None:
        """Forget every task (after an evm_revert took the chain back): done at the next tick,
        reading events from the head as it is now (blocks mined meanwhile are not skipped).
        Nodes do not act until then."""
        self._reset_cursor = self._source.head() + 1
        self._wake.set()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No node acts and no tick runs inside this block (waits for current actions to end).
        Inside it, every node has taken in the events read so far."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._ticking)
            for worker in self._workers:
                stack.enter_context(worker.acting)
            for worker in self._workers:
                worker.take_events()
            yield

    def reset(self) -> None:
        """Forget every task now and read events from the next block on (see `held`)."""
        with self.held():
            self._reset_cursor = None
            self._forget(self._source.head() + 1)

    def _forget(self, cursor: int) -> None:
        self._feed.cursor = cursor
        for worker in self._workers:
            worker.forget()

    # ------------------------------------------------------------ the reader

    def _run(self) -> None:
        # A wake during the tick is kept: it starts the next one.
        _serve(self._stop, self._wake, self.interval, self._ticking, self.tick, "node loop", self._log)

    def tick(self) -> None:
        """One pass of the reader: new events to the nodes, nodes with work woken."""
        self.ticks += 1
        if self._reset_cursor is not None:
            with self.held():
                cursor, self._reset_cursor = self._reset_cursor, None
                if cursor is not None:
                    self._forget(cursor)
            self._log("chain reverted: nodes forget their tasks; the Relay starts afresh")
        events = self._new_events()
        for worker in self._workers:
            if events:
                worker.inbox.extend(events)
            # Woken with news, or with work to retry (args not yet on the Relay, a deadline).
            if events or worker.has_work or worker.node.has_requests:
                worker.wake.set()
        self._sweep()
        if self._after_tick is not None:
            self._after_tick()

    def _new_events(self) -> list[TaskEvent]:
        self.head = self._source.head()
        events = self._feed.poll(up_to=self.head)
        for line, task_id, block in described_events(events, self._names):
            self._log(line)
            if self._recorder is not None:
                self._recorder.chain_event(line, task_id, block)
        return events

    def _sweep(self) -> None:
        """Cancel tasks an earlier run left in flight, once past their deadline."""
        if not self._stale:
            return
        now = self.deployment.chain.now()
        ours = {worker.node.address: worker for worker in self._workers}
        for task in list(self._stale):
            if now <= task.deadline:
                continue
            self._stale.remove(task)
            worker = next((ours[a] for a in task.selected_nodes if a in ours), None)
            if worker is None:
                self._log(f"task {task.task_id}: left from an earlier run, past its deadline; none of its nodes is running")
                continue
            canceller = worker.node
            if not self.deployment.task.get_task(task.task_id).exists:
                continue  # settled or cancelled meanwhile (by a node that resumed it, or the app)
            try:
                with worker.acting:  # the node's own transactions and this one share its nonces
                    self.deployment.task.cancel(canceller.account, task.task_id)
                self._log(f"task {task.task_id}: left from an earlier run; cancelled by {canceller.name}")
            except RevertError as exc:
                self._log(f"task {task.task_id}: cancel by {canceller.name} reverted: {exc.reason}")
