"""What the live network did, in order: the sandbox's timeline.

The same `TimelineEntry` records as `Network.timeline`, filled from three
threads: the node loop (Task events, one line per event as the sandbox logs
them, and every node action), the servers' middleware (each Relay request, who
sent it and its answer, and every injected fault, on either server) and the
test (clock moves). `step` is the node loop's tick; `block` and `time` are the
chain's head when the entry was written.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from hydrogen_harness.client.relay import task_id_in_path
from hydrogen_harness.sim.network import TimelineEntry
from hydrogen_harness.sandbox.faults import RequestSeen

__all__ = ["ACTOR_HEADER", "Timeline"]

ACTOR_HEADER = "x-hydrogen-actor"
"""Header the sandbox's own nodes send to the Relay, naming themselves; requests
without it come from the application under test (shown as "client")."""

MAX_ENTRIES = 20_000  # the newest kept: a sandbox command runs for days, clients poll


class Timeline:
    """A thread-safe list of `TimelineEntry` (the newest `limit`); `clear()` starts a new test's."""

    def __init__(self, head: Callable[[], tuple[int, int]], tick: Callable[[], int], limit: int = MAX_ENTRIES) -> None:
        self._head = head
        self._tick = tick
        self._lock = threading.Lock()
        self._entries: deque[TimelineEntry] = deque(maxlen=limit)

    @property
    def entries(self) -> list[TimelineEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def record(self, actor: str, what: str, task_id: int | None = None, block: int | None = None) -> None:
        number, timestamp = self._head()
        entry = TimelineEntry(self._tick(), number if block is None else block, timestamp, actor, what, task_id)
        with self._lock:
            self._entries.append(entry)

    # ------------------------------------------------------------ sources

    def chain_event(self, line: str, task_id: int, block: int) -> None:
        self.record("chain", line.removeprefix(f"task {task_id}: "), task_id, block)

    def node_action(self, node: str, what: str, task_id: int | None) -> None:
        self.record(node, what, task_id)

    def request(self, seen: RequestSeen) -> None:
        """A request one of the servers answered: every Relay request, and faulted RPC ones."""
        if seen.server == "rpc" and seen.fault is None:
            return  # clients poll the chain many times a second: only faults are news
        task_id = task_id_in_path(seen.path)
        answer = "dropped" if seen.status is None else str(seen.status)
        fault = f" (injected fault: {seen.fault.effect})" if seen.fault is not None else ""
        where = "relay" if seen.server == "relay" else "rpc"
        actor = seen.headers.get(ACTOR_HEADER, "client")
        self.record(actor, f"{where} {seen.method} {seen.path} -> {answer}{fault}", task_id)
