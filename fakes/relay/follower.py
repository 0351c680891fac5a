"""The fake Relay's view of the chain: it follows the Task contract's events.

Like the real Relay it learns a task from `TaskCreated` (creator, hashes, the node
of each round), its result from `TaskSuccess` and its failure from `TaskAborted`,
reading from a block cursor kept in storage, so it still knows a task after the
contract has deleted it. Unlike the real one, which polls every few seconds, the
service catches up before answering each request.

Deliberate deviation (PROTOCOL.md 4): a `TaskAborted` after the results were
uploaded (a late "Task Cancelled") leaves status 4, so the images stay downloadable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from harness.events import TaskAborted, TaskCreated, TaskEvent, TaskSuccess
from harness.relay_client import RelayTaskStatus

from fakes.relay.chain_source import ChainSource
from fakes.relay.errors import RelayInternalError
from fakes.relay.records import RowKind, SelectedNodeRecord, TaskRecord
from fakes.relay.storage import Storage

__all__ = ["ChainFollower"]

# Blocks per log query: JSON-RPC nodes commonly cap eth_getLogs ranges.
PAGE_BLOCKS = 2000

_SUCCESS_FROM = (RelayTaskStatus.CREATED, RelayTaskStatus.ARGS_UPLOADED)


class ChainFollower:
    """Applies the chain's Task events to storage, from the stored cursor to the head."""

    def __init__(
        self,
        source: ChainSource,
        storage: Storage,
        clock: Callable[[], int],
        *,
        lock: AbstractContextManager[object] | None = None,
        start_block: int = 0,
    ) -> None:
        self.source = source
        self.storage = storage
        self.clock = clock
        self._chain_lock = lock if lock is not None else nullcontext()
        self.start_block = start_block

    def catch_up(self) -> int:
        """Read every new block up to the head; returns the number of events applied."""
        with self._chain_lock:
            head = self.source.head()
        start = self.storage.block_cursor()
        if start is None:
            start = self.start_block
        if head < start - 1:
            # The chain went backwards (a snapshot was reverted): the stored tasks
            # may not exist any more, and ids will be reused. Refuse to guess.
            raise RelayInternalError(
                f"the chain's head block {head} is behind the Relay's cursor (block {start}): "
                "the chain was reverted under the Relay; reset the Relay"
            )
        applied = 0
        while start <= head:
            end = min(head, start + PAGE_BLOCKS - 1)
            with self._chain_lock:
                events = self.source.events(start, end)
                now = int(self.clock())
            with self.storage.transaction():
                for event in events:
                    self.apply(event, now)
                self.storage.set_block_cursor(end + 1)
            applied += len(events)
            start = end + 1
        return applied

    def apply(self, event: TaskEvent, now: int) -> None:
        """Apply one event (other Task events, e.g. CommitmentsReady, are ignored)."""
        if isinstance(event, TaskCreated):
            self._created(event, now)
        elif isinstance(event, TaskSuccess):
            self._success(event, now)
        elif isinstance(event, TaskAborted):
            self._aborted(event, now)

    def _created(self, event: TaskCreated, now: int) -> None:
        task = self.storage.get_task(event.task_id)
        if task is None:
            task = TaskRecord(
                row_id=self.storage.next_row_id(RowKind.TASK),
                task_id=event.task_id,
                creator=event.creator,
                task_hash=bytes(event.task_hash),
                data_hash=bytes(event.data_hash),
                status=RelayTaskStatus.CREATED,
                created_at=now,
                updated_at=now,
            )
        if any(node.round == event.round for node in task.selected_nodes):
            return  # the same log seen twice
        node = SelectedNodeRecord(
            row_id=self.storage.next_row_id(RowKind.SELECTED_NODE),
            round=event.round,
            address=event.selected_node,
            created_at=now,
            updated_at=now,
        )
        nodes = tuple(sorted((*task.selected_nodes, node), key=lambda n: n.round))
        self.storage.put_task(dataclasses.replace(task, selected_nodes=nodes))

    def _success(self, event: TaskSuccess, now: int) -> None:
        task = self.storage.get_task(event.task_id)
        if task is None or task.status not in _SUCCESS_FROM:
            return
        nodes = tuple(
            dataclasses.replace(node, result=bytes(event.result), is_result_selected=True, updated_at=now)
            if node.address == event.result_node
            else node
            for node in task.selected_nodes
        )
        self.storage.put_task(
            dataclasses.replace(task, selected_nodes=nodes, status=RelayTaskStatus.PENDING_RESULTS, updated_at=now)
        )

    def _aborted(self, event: TaskAborted, now: int) -> None:
        task = self.storage.get_task(event.task_id)
        if task is None or task.status in (RelayTaskStatus.ABORTED, RelayTaskStatus.RESULTS_UPLOADED):
            return
        self.storage.put_task(dataclasses.replace(task, status=RelayTaskStatus.ABORTED, updated_at=now))
