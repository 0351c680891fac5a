"""The fake Relay's view of the chain: it follows the Task contract's events.

Like the real Relay it learns a task from `TaskCreated` (creator, hashes, the node
of each round), its result from `TaskSuccess` and its failure from `TaskAborted`,
reading from a block cursor kept in storage, so it still knows a task after the
contract has deleted it. Unlike the real one, which polls every few seconds, the
service catches up before answering each request.

Deliberate deviation (PROTOCOL.md 4): a `TaskAborted` after the results were
uploaded (a late "Task Cancelled") leaves status 4, so the images stay downloadable.

A Relay restarted on its storage may find that the chain lost blocks it had read
(the sandbox killed before its journal had them), or has other blocks at those
heights. `resume()` compares block hashes, not heights: the hash of the last block
read and of every block events were taken from are kept, the newest of those the
chain still has is where the two agree, and only what came from later blocks is
undone (tasks created there are dropped; a success or abort there is undone); the
follower then reads the chain from there again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from hydrogen_harness.protocol.events import TaskAborted, TaskCreated, TaskEvent, TaskSuccess
from hydrogen_harness.client.relay import RelayTaskStatus

from hydrogen_harness.chain.event_feed import ChainSource, EventFeed
from hydrogen_harness.fakes.relay.errors import RelayInternalError
from hydrogen_harness.fakes.relay.records import RowKind, SelectedNodeRecord, TaskRecord
from hydrogen_harness.fakes.relay.storage import Storage

__all__ = ["ChainFollower", "Rollback"]

# Blocks per log query: JSON-RPC nodes commonly cap eth_getLogs ranges.
PAGE_BLOCKS = 2000

_SUCCESS_FROM = (RelayTaskStatus.CREATED, RelayTaskStatus.ARGS_UPLOADED)
_FOLLOWED = (TaskCreated, TaskSuccess, TaskAborted)


@dataclass(frozen=True)
class Rollback:
    """What `ChainFollower.resume` undid: the chain no longer has the blocks after
    `kept_up_to` that the Relay had read (up to `last_read`)."""

    last_read: int
    kept_up_to: int
    head: int
    dropped: tuple[TaskRecord, ...]  # created in a lost block: forgotten with their uploads
    successes_undone: tuple[TaskRecord, ...]  # as they were, uploaded images included
    aborts_undone: tuple[TaskRecord, ...]

    def describe(self) -> str:
        """One line for the log: which blocks, and exactly what was dropped."""
        what = [
            *(_dropped(task) for task in self.dropped),
            *(_success_undone(task) for task in self.successes_undone),
            *(f"task {task.task_id}'s TaskAborted of block {task.aborted_block} undone" for task in self.aborts_undone),
        ]
        return (
            f"the chain (head {self.head}) no longer has the blocks after {self.kept_up_to} that the Relay had read "
            f"(up to block {self.last_read}): the Relay reads them again from block {self.kept_up_to + 1}; "
            + ("; ".join(what) + "; every other task and upload kept" if what else "no task came from them, nothing dropped")
        )


def _dropped(task: TaskRecord) -> str:
    uploads = []
    if task.task_args:
        uploads.append("its args")
    if task.image_count:
        uploads.append(f"its {task.image_count} images")
    gone = f", with {' and '.join(uploads)}" if uploads else ""
    return f"task {task.task_id} (created in block {task.created_block}) dropped{gone}"


def _success_undone(task: TaskRecord) -> str:
    images = f", its {task.image_count} uploaded images discarded" if task.image_count else ""
    return f"task {task.task_id}'s TaskSuccess of block {task.success_block} undone{images}"


def _status_of(task: TaskRecord) -> RelayTaskStatus:
    """The status the events still standing and the uploads give a task."""
    if task.aborted_block is not None:
        return RelayTaskStatus.ABORTED
    if task.result_node is not None:
        return RelayTaskStatus.RESULTS_UPLOADED if task.image_count else RelayTaskStatus.PENDING_RESULTS
    return RelayTaskStatus.ARGS_UPLOADED if task.task_args else RelayTaskStatus.CREATED


class ChainFollower:
    """Applies the chain's Task events to storage, from the stored cursor to the head;
    `lock` is held around each read of the chain (see `RelayService`)."""

    _NO_LOCK: AbstractContextManager[object] = nullcontext()

    def __init__(
        self, source: ChainSource, storage: Storage, clock: Callable[[], int], *, lock: AbstractContextManager[object] = _NO_LOCK, start_block: int = 0
    ) -> None:
        self.source = source
        self.storage = storage
        self.clock = clock
        self._chain_lock = lock
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
        feed = EventFeed(self.source, start, page_blocks=PAGE_BLOCKS)
        while True:
            with self._chain_lock:
                page = feed.next_page(up_to=head)
                if page is None:
                    break
                _, end, events = page
                # Read with the events, under the same lock: the hashes of the blocks
                # they are in, and of the last block read.
                blocks = {event.block_number for event in events if isinstance(event, _FOLLOWED)} | {end}
                hashes = {number: self.source.block_hash(number) for number in sorted(blocks)}
                now = int(self.clock())
            with self.storage.transaction():
                for event in events:
                    block_hash = hashes.get(event.block_number)
                    if self.apply(event, now) and block_hash is not None:
                        self.storage.remember_block(event.block_number, block_hash)
                self.storage.set_block_cursor(end + 1, hashes[end])
            applied += len(events)
        return applied

    def apply(self, event: TaskEvent, now: int) -> bool:
        """Apply one event (other Task events, e.g. CommitmentsReady, are ignored);
        True if it changed a record."""
        if isinstance(event, TaskCreated):
            return self._created(event, now)
        if isinstance(event, TaskSuccess):
            return self._success(event, now)
        if isinstance(event, TaskAborted):
            return self._aborted(event, now)
        return False

    # ------------------------------------------------------------ resuming

    def resume(self) -> Rollback | None:
        """Check, after a restart, that the chain still has the last block this storage
        read; if not, undo what came from the blocks it lost (see the module docstring)
        and return what was undone. None when there was nothing to undo."""
        cursor = self.storage.block_cursor()
        if cursor is None or cursor <= self.start_block:
            return None  # nothing read yet
        last = cursor - 1
        expected = self.storage.cursor_hash()
        with self._chain_lock:
            head = self.source.head()
            found = self.source.block_hash(last) if last <= head else None
            if expected is None:
                # No hash to compare (a chain without block hashes, or a database from
                # before they were kept): heights are all there is to go by.
                if last <= head:
                    return None
                kept, kept_hash = head, self.source.block_hash(head)
            elif found == expected:
                return None
            else:
                kept, kept_hash = self._newest_block_still_there(head)
        return self._roll_back(last, kept, kept_hash, head)

    def _newest_block_still_there(self, head: int) -> tuple[int, bytes | None]:
        """The newest block this storage read events from that the chain still has
        with the same hash (its ancestors are then the same too), with that hash."""
        remembered = self.storage.remembered_blocks()
        for number in sorted(remembered, reverse=True):
            if number <= head and self.source.block_hash(number) == remembered[number]:
                return number, remembered[number]
        before = self.start_block - 1
        return before, self.source.block_hash(before) if before >= 0 else None

    def _roll_back(self, last: int, kept: int, kept_hash: bytes | None, head: int) -> Rollback:
        dropped: list[TaskRecord] = []
        successes: list[TaskRecord] = []
        aborts: list[TaskRecord] = []
        now = int(self.clock())
        with self.storage.transaction():
            for task in sorted(self.storage.tasks_from_blocks_after(kept), key=lambda t: t.task_id):
                if task.created_block is not None and task.created_block > kept:
                    self.storage.delete_task(task.task_id)
                    dropped.append(task)
                    continue
                undone = task
                # An abort never comes before a success (a success needs a live task),
                # so undoing a success undoes any later abort too.
                if task.aborted_block is not None and task.aborted_block > kept:
                    undone = dataclasses.replace(undone, aborted_block=None)
                    aborts.append(task)
                if task.success_block is not None and task.success_block > kept:
                    # The images were checked against a result the chain no longer has.
                    nodes = tuple(dataclasses.replace(n, result=b"", is_result_selected=False) for n in task.selected_nodes)
                    undone = dataclasses.replace(undone, selected_nodes=nodes, success_block=None, image_count=0)
                    self.storage.put_images(task.task_id, [])
                    successes.append(task)
                self.storage.put_task(dataclasses.replace(undone, status=_status_of(undone), updated_at=now))
            self.storage.forget_blocks_after(kept)
            self.storage.set_block_cursor(kept + 1, kept_hash)
        return Rollback(last, kept, head, tuple(dropped), tuple(successes), tuple(aborts))

    # ------------------------------------------------------------ events

    def _created(self, event: TaskCreated, now: int) -> bool:
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
                created_block=event.block_number,
            )
        if any(node.round == event.round for node in task.selected_nodes):
            return False  # the same log seen twice
        node = SelectedNodeRecord(
            row_id=self.storage.next_row_id(RowKind.SELECTED_NODE),
            round=event.round,
            address=event.selected_node,
            created_at=now,
            updated_at=now,
        )
        nodes = tuple(sorted((*task.selected_nodes, node), key=lambda n: n.round))
        self.storage.put_task(dataclasses.replace(task, selected_nodes=nodes))
        return True

    def _success(self, event: TaskSuccess, now: int) -> bool:
        task = self.storage.get_task(event.task_id)
        if task is None or task.status not in _SUCCESS_FROM:
            return False
        nodes = tuple(
            dataclasses.replace(node, result=bytes(event.result), is_result_selected=True, updated_at=now)
            if node.address == event.result_node
            else node
            for node in task.selected_nodes
        )
        self.storage.put_task(
            dataclasses.replace(
                task,
                selected_nodes=nodes,
                status=RelayTaskStatus.PENDING_RESULTS,
                updated_at=now,
                success_block=event.block_number,
            )
        )
        return True

    def _aborted(self, event: TaskAborted, now: int) -> bool:
        task = self.storage.get_task(event.task_id)
        if task is None or task.status in (RelayTaskStatus.ABORTED, RelayTaskStatus.RESULTS_UPLOADED):
            return False
        self.storage.put_task(
            dataclasses.replace(task, status=RelayTaskStatus.ABORTED, updated_at=now, aborted_block=event.block_number)
        )
        return True
