"""`Storage` in an SQLite file (stdlib sqlite3), so a restarted Relay keeps its state.

Task ids are stored as decimal text: chain ids are uint256 and SQLite integers
stop at 2**63. One connection is shared by the threads of the sandbox's server,
guarded by a lock; writes outside `transaction()` commit at once.

The file holds what apps uploaded, so it is owner-only (0600), and so are the
-wal and -shm files SQLite makes beside it (it gives them the database's mode).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path

from hydrogen_harness.client.relay import RelayTaskStatus

from hydrogen_harness.fakes.relay.records import RowKind, SelectedNodeRecord, TaskRecord
from hydrogen_harness.fakes.relay.storage import NestedTransactions

__all__ = ["RelayDatabaseDamaged", "RelayDatabaseError", "SqliteStorage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    row_id INTEGER NOT NULL,
    creator TEXT NOT NULL,
    task_hash BLOB NOT NULL,
    data_hash BLOB NOT NULL,
    status INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    task_args TEXT NOT NULL,
    image_count INTEGER NOT NULL,
    created_block INTEGER,
    success_block INTEGER,
    aborted_block INTEGER
);
CREATE TABLE IF NOT EXISTS selected_nodes (
    row_id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    address TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    result BLOB NOT NULL,
    is_result_selected INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS selected_nodes_task ON selected_nodes (task_id);
CREATE TABLE IF NOT EXISTS images (
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (task_id, idx)
);
CREATE TABLE IF NOT EXISTS cursor (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    next_block INTEGER NOT NULL,
    last_hash BLOB
);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
"""

# Columns added since the first databases were written, and their type.
_ADDED_TASK_COLUMNS = {"created_block": "INTEGER", "success_block": "INTEGER", "aborted_block": "INTEGER"}
_LEGACY_CURSOR_KEY = "block_cursor"  # where the first databases kept the cursor (in meta)
_TASK_COLUMNS = (
    "row_id, creator, task_hash, data_hash, status, created_at, updated_at, task_args, image_count,"
    " created_block, success_block, aborted_block"
)


_SQLITE_CORRUPT = 11  # "database disk image is malformed"
_SQLITE_NOTADB = 26  # "file is not a database"


class RelayDatabaseError(RuntimeError):
    """The Relay's database cannot be used; the message names the file and says why."""


class RelayDatabaseDamaged(RelayDatabaseError):
    """The Relay's database file is damaged: not a database, or corrupt inside."""


def _make_private(path: Path) -> None:
    """Create `path` owner-only if missing (an empty file is an empty database), and
    take group and other access away from it and its companions if they exist."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            os.chmod(companion, 0o600)


class SqliteStorage(NestedTransactions):
    """`Storage` in the SQLite database file at `path` (created if missing)."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = path
        try:
            _make_private(Path(path))
        except OSError as exc:
            raise RelayDatabaseError(f"cannot open the Relay's database {path}: {exc}") from None
        super().__init__()
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction
            # spans exactly the service's `with storage.transaction()` block.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise RelayDatabaseError(f"cannot open the Relay's database {path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._upgrade()
            # A damaged page may lie anywhere: look at them all now (milliseconds per
            # MB), rather than fail on some request later.
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            self._db.close()
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise RelayDatabaseDamaged(f"the Relay's database {path} is damaged ({exc})") from None
            raise RelayDatabaseError(f"cannot use the Relay's database {path}: {exc}") from None
        if problems != ["ok"]:
            self._db.close()
            raise RelayDatabaseDamaged(f"the Relay's database {path} is damaged ({'; '.join(map(str, problems))})")

    def _upgrade(self) -> None:
        """Bring a database written by an earlier version up to this schema."""
        with self.transaction():
            present = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
            for column, kind in _ADDED_TASK_COLUMNS.items():
                if column not in present:
                    self._db.execute(f"ALTER TABLE tasks ADD COLUMN {column} {kind}")  # fixed names
            legacy = self._meta(_LEGACY_CURSOR_KEY)
            if legacy is not None:
                # No hash was kept with it: the next start compares heights only, once.
                self._db.execute("INSERT OR IGNORE INTO cursor (id, next_block, last_hash) VALUES (0, ?, NULL)", (legacy,))
                self._db.execute("DELETE FROM meta WHERE key = ?", (_LEGACY_CURSOR_KEY,))

    # ------------------------------------------------------------ transactions

    def _begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self._db.execute("COMMIT")

    def _rollback(self) -> None:
        self._db.execute("ROLLBACK")

    # ------------------------------------------------------------ meta

    def _meta(self, key: str) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _cursor(self) -> tuple[int, bytes | None] | None:
        with self._lock:
            row = self._db.execute("SELECT next_block, last_hash FROM cursor WHERE id = 0").fetchone()
        return None if row is None else (int(row[0]), None if row[1] is None else bytes(row[1]))

    def block_cursor(self) -> int | None:
        cursor = self._cursor()
        return None if cursor is None else cursor[0]

    def cursor_hash(self) -> bytes | None:
        cursor = self._cursor()
        return None if cursor is None else cursor[1]

    def set_block_cursor(self, block: int, last_hash: bytes | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cursor (id, next_block, last_hash) VALUES (0, ?, ?)",
                (block, None if last_hash is None else bytes(last_hash)),
            )

    def remember_block(self, number: int, block_hash: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO blocks (number, hash) VALUES (?, ?)", (number, bytes(block_hash)))

    def remembered_blocks(self) -> dict[int, bytes]:
        with self._lock:
            return {int(n): bytes(h) for n, h in self._db.execute("SELECT number, hash FROM blocks")}

    def forget_blocks_after(self, number: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blocks WHERE number > ?", (number,))

    def next_row_id(self, kind: RowKind) -> int:
        key = f"row_id:{kind.value}"
        with self._lock, self.transaction():
            value = (self._meta(key) or 0) + 1
            self._set_meta(key, value)
            return value

    # ------------------------------------------------------------ tasks

    def get_task(self, task_id: int) -> TaskRecord | None:
        key = str(task_id)
        with self._lock:
            row = self._db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id = ?", (key,)).fetchone()
            if row is None:
                return None
            nodes = self._db.execute(
                "SELECT row_id, round, address, created_at, updated_at, result, is_result_selected"
                " FROM selected_nodes WHERE task_id = ? ORDER BY round, row_id",
                (key,),
            ).fetchall()
        (row_id, creator, task_hash, data_hash, status, created_at, updated_at, task_args, image_count,
         created_block, success_block, aborted_block) = row  # fmt: skip
        return TaskRecord(
            row_id=row_id,
            task_id=task_id,
            creator=creator,
            task_hash=bytes(task_hash),
            data_hash=bytes(data_hash),
            status=RelayTaskStatus(status),
            created_at=created_at,
            updated_at=updated_at,
            task_args=task_args,
            image_count=image_count,
            created_block=created_block,
            success_block=success_block,
            aborted_block=aborted_block,
            selected_nodes=tuple(
                SelectedNodeRecord(
                    row_id=n[0],
                    round=n[1],
                    address=n[2],
                    created_at=n[3],
                    updated_at=n[4],
                    result=bytes(n[5]),
                    is_result_selected=bool(n[6]),
                )
                for n in nodes
            ),
        )

    def put_task(self, task: TaskRecord) -> None:
        key = str(task.task_id)
        with self._lock, self.transaction():
            self._db.execute(
                f"INSERT OR REPLACE INTO tasks (task_id, {_TASK_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                (
                    key,
                    task.row_id,
                    task.creator,
                    task.task_hash,
                    task.data_hash,
                    int(task.status),
                    task.created_at,
                    task.updated_at,
                    task.task_args,
                    task.image_count,
                    task.created_block,
                    task.success_block,
                    task.aborted_block,
                ),
            )
            self._db.execute("DELETE FROM selected_nodes WHERE task_id = ?", (key,))
            self._db.executemany(
                "INSERT INTO selected_nodes (row_id, task_id, round, address, created_at, updated_at,"
                " result, is_result_selected) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (n.row_id, key, n.round, n.address, n.created_at, n.updated_at, n.result, int(n.is_result_selected))
                    for n in task.selected_nodes
                ],
            )

    # ------------------------------------------------------------ images

    def put_images(self, task_id: int, images: Sequence[bytes]) -> None:
        key = str(task_id)
        with self._lock, self.transaction():
            self._db.execute("DELETE FROM images WHERE task_id = ?", (key,))
            self._db.executemany(
                "INSERT INTO images (task_id, idx, data) VALUES (?, ?, ?)",
                [(key, index, bytes(image)) for index, image in enumerate(images)],
            )

    def get_image(self, task_id: int, index: int) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM images WHERE task_id = ? AND idx = ?", (str(task_id), index)
            ).fetchone()
        return None if row is None else bytes(row[0])

    # ------------------------------------------------------------ rolling back

    def tasks_from_blocks_after(self, number: int) -> list[TaskRecord]:
        with self._lock:
            ids = [
                int(row[0])
                for row in self._db.execute(
                    "SELECT task_id FROM tasks WHERE created_block > ? OR success_block > ? OR aborted_block > ?",
                    (number, number, number),
                )
            ]
            return [task for task in map(self.get_task, ids) if task is not None]

    def delete_task(self, task_id: int) -> None:
        key = str(task_id)
        with self._lock, self.transaction():
            for table in ("tasks", "selected_nodes", "images"):
                self._db.execute(f"DELETE FROM {table} WHERE task_id = ?", (key,))  # noqa: S608 - fixed table names

    # ------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        with self._lock, self.transaction():
            for table in ("meta", "tasks", "selected_nodes", "images", "cursor", "blocks"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    def close(self) -> None:
        with self._lock:
            self._db.close()
