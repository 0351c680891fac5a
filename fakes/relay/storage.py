"""Where the fake Relay keeps tasks, uploaded images and its block cursor.

`Storage` is the small interface the service needs; `MemoryStorage` implements it
in dicts for tests, `SqliteStorage` (in `sqlite_storage.py`) in a file so the
sandbox keeps its state across restarts. Records are immutable: an update is a
`put_task` of a new record, which keeps a rolled-back transaction cheap.

Besides the cursor (the next block to read, and the hash of the last block read),
a storage remembers the hash of every block it took events from: a restarted
Relay compares them with the chain to find what the chain lost, if anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

from hydrogen_harness.fakes.relay.records import RowKind, TaskRecord

__all__ = ["MemoryStorage", "Storage"]

_K = TypeVar("_K")
_V = TypeVar("_V")


class Storage(Protocol):
    """The fake Relay's persistent state."""

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside happen together or, if the block raises, not at all."""
        ...

    def block_cursor(self) -> int | None:
        """The next block to read events from; None before the first catch-up."""
        ...

    def cursor_hash(self) -> bytes | None:
        """The hash of the last block read (the cursor's block - 1) when it was read;
        None if unknown (a chain without block hashes, or an older database)."""
        ...

    def set_block_cursor(self, block: int, last_hash: bytes | None = None) -> None:
        """Move the cursor to `block`, having read block - 1 whose hash is `last_hash`."""
        ...

    def remember_block(self, number: int, block_hash: bytes) -> None:
        """Note the hash of a block that events were taken from."""
        ...

    def remembered_blocks(self) -> dict[int, bytes]:
        """Every block noted by `remember_block` and not forgotten, by number."""
        ...

    def forget_blocks_after(self, number: int) -> None:
        """Forget the remembered blocks after `number`."""
        ...

    def next_row_id(self, kind: RowKind) -> int:
        """A fresh `ID` for a row of `kind` (1, 2, 3, ... per kind)."""
        ...

    def get_task(self, task_id: int) -> TaskRecord | None: ...

    def put_task(self, task: TaskRecord) -> None:
        """Insert or replace the record of `task.task_id`."""
        ...

    def put_images(self, task_id: int, images: Sequence[bytes]) -> None:
        """Store the result images of a task, replacing any earlier ones."""
        ...

    def get_image(self, task_id: int, index: int) -> bytes | None: ...

    def tasks_from_blocks_after(self, number: int) -> list[TaskRecord]:
        """The tasks created, succeeded or aborted by an event of a block after `number`."""
        ...

    def delete_task(self, task_id: int) -> None:
        """Forget a task, its selected nodes and its images."""
        ...

    def reset(self) -> None:
        """Forget everything: tasks, images, cursor, remembered blocks and row ids."""
        ...

    def close(self) -> None: ...


def _from_blocks_after(task: TaskRecord, number: int) -> bool:
    blocks = (task.created_block, task.success_block, task.aborted_block)
    return any(block is not None and block > number for block in blocks)


class NestedTransactions:
    """`transaction()` that nests: inner blocks join the outermost, which alone commits
    (when it ends normally) or rolls back (when anything in it raised)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    def _begin(self) -> None: ...

    def _commit(self) -> None: ...

    def _rollback(self) -> None: ...

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._begin()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            else:
                self._commit()
            finally:
                self._depth = 0


class MemoryStorage(NestedTransactions):
    """`Storage` in memory; fast, and gone with the process.

    A transaction keeps an undo log of what it overwrote, so that beginning one costs
    the same however many tasks and blocks are stored (a copy of every table did not).
    """

    def __init__(self) -> None:
        super().__init__()
        self._undo: list[Callable[[], None]] | None = None  # inside a transaction: what rolls it back
        self.reset()

    def reset(self) -> None:
        with self._lock:
            if self._undo is not None:
                saved = (self._tasks, self._images, self._cursor, self._cursor_hash, self._blocks, self._row_ids)
                self._undo.append(lambda: self._restore(saved))
            self._tasks: dict[int, TaskRecord] = {}
            self._images: dict[int, tuple[bytes, ...]] = {}
            self._cursor: int | None = None
            self._cursor_hash: bytes | None = None
            self._blocks: dict[int, bytes] = {}
            self._row_ids: dict[RowKind, int] = {kind: 0 for kind in RowKind}

    def _restore(self, saved: tuple[Any, ...]) -> None:
        self._tasks, self._images, self._cursor, self._cursor_hash, self._blocks, self._row_ids = saved

    def _begin(self) -> None:
        self._undo = []

    def _commit(self) -> None:
        self._undo = None

    def _rollback(self) -> None:
        undo, self._undo = self._undo or [], None
        for step in reversed(undo):
            step()

    def _write(self, table: dict[_K, _V], key: _K, value: _V | None) -> None:
        """`table[key] = value` (None: delete it), noted in the undo log if in a transaction."""
        if self._undo is not None:
            old = table.get(key)
            self._undo.append(lambda: self._write(table, key, old))
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value

    def block_cursor(self) -> int | None:
        return self._cursor

    def cursor_hash(self) -> bytes | None:
        return self._cursor_hash

    def set_block_cursor(self, block: int, last_hash: bytes | None = None) -> None:
        with self._lock:
            if self._undo is not None:
                cursor, cursor_hash = self._cursor, self._cursor_hash
                self._undo.append(lambda: self._set_cursor(cursor, cursor_hash))
            self._set_cursor(block, last_hash)

    def _set_cursor(self, block: int | None, last_hash: bytes | None) -> None:
        self._cursor, self._cursor_hash = block, last_hash

    def remember_block(self, number: int, block_hash: bytes) -> None:
        with self._lock:
            self._write(self._blocks, number, bytes(block_hash))

    def remembered_blocks(self) -> dict[int, bytes]:
        return dict(self._blocks)

    def forget_blocks_after(self, number: int) -> None:
        with self._lock:
            for later in [n for n in self._blocks if n > number]:
                self._write(self._blocks, later, None)

    def next_row_id(self, kind: RowKind) -> int:
        with self._lock:
            self._write(self._row_ids, kind, self._row_ids[kind] + 1)
            return self._row_ids[kind]

    def get_task(self, task_id: int) -> TaskRecord | None:
        return self._tasks.get(task_id)

    def put_task(self, task: TaskRecord) -> None:
        with self._lock:
            self._write(self._tasks, task.task_id, task)

    def put_images(self, task_id: int, images: Sequence[bytes]) -> None:
        with self._lock:
            self._write(self._images, task_id, tuple(bytes(image) for image in images))

    def get_image(self, task_id: int, index: int) -> bytes | None:
        images = self._images.get(task_id, ())
        return images[index] if 0 <= index < len(images) else None

    def tasks_from_blocks_after(self, number: int) -> list[TaskRecord]:
        return [task for task in self._tasks.values() if _from_blocks_after(task, number)]

    def delete_task(self, task_id: int) -> None:
        with self._lock:
            self._write(self._tasks, task_id, None)
            self._write(self._images, task_id, None)

    def close(self) -> None:
        pass
