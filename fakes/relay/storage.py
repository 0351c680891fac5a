"""Where the fake Relay keeps tasks, uploaded images and its block cursor.

`Storage` is the small interface the service needs; `MemoryStorage` implements it
in dicts for tests, `SqliteStorage` (in `sqlite_storage.py`) in a file so the
sandbox keeps its state across restarts. Records are immutable: an update is a
`put_task` of a new record, which keeps a rolled-back transaction cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from fakes.relay.records import RowKind, TaskRecord

__all__ = ["MemoryStorage", "Storage"]


class Storage(Protocol):
    """The fake Relay's persistent state."""

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside happen together or, if the block raises, not at all."""
        ...

    def block_cursor(self) -> int | None:
        """The next block to read events from; None before the first catch-up."""
        ...

    def set_block_cursor(self, block: int) -> None: ...

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

    def reset(self) -> None:
        """Forget everything: tasks, images, cursor and row ids."""
        ...

    def close(self) -> None: ...


class MemoryStorage:
    """`Storage` in memory; fast, and gone with the process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._tasks: dict[int, TaskRecord] = {}
            self._images: dict[int, tuple[bytes, ...]] = {}
            self._cursor: int | None = None
            self._row_ids: dict[RowKind, int] = {kind: 0 for kind in RowKind}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:  # nested: the outer transaction decides
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            saved = (dict(self._tasks), dict(self._images), self._cursor, dict(self._row_ids))
            self._depth = 1
            try:
                yield
            except BaseException:
                self._tasks, self._images, self._cursor, self._row_ids = saved
                raise
            finally:
                self._depth = 0

    def block_cursor(self) -> int | None:
        return self._cursor

    def set_block_cursor(self, block: int) -> None:
        with self._lock:
            self._cursor = block

    def next_row_id(self, kind: RowKind) -> int:
        with self._lock:
            self._row_ids[kind] += 1
            return self._row_ids[kind]

    def get_task(self, task_id: int) -> TaskRecord | None:
        return self._tasks.get(task_id)

    def put_task(self, task: TaskRecord) -> None:
        with self._lock:
            self._tasks[task.task_id] = task

    def put_images(self, task_id: int, images: Sequence[bytes]) -> None:
        with self._lock:
            self._images[task_id] = tuple(bytes(image) for image in images)

    def get_image(self, task_id: int, index: int) -> bytes | None:
        images = self._images.get(task_id, ())
        return images[index] if 0 <= index < len(images) else None

    def close(self) -> None:
        pass
