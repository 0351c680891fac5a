"""A Relay restarted on its storage, on a chain that lost or replaced blocks it had
read: it compares block hashes (not heights) and undoes exactly what came from the
blocks the chain no longer has, keeping every other task and upload."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_utils import keccak

from hydrogen_harness.fakes.relay import ChainFollower, MemoryStorage, SqliteStorage, Storage
from hydrogen_harness.protocol.events import TaskAborted, TaskCreated, TaskEvent, TaskSuccess
from hydrogen_harness.client.relay import RelayTaskStatus

CREATOR = "0x" + "C0" * 20
NODES = ["0x" + f"{i}{i}" * 20 for i in range(1, 4)]
NOW = 1_700_000_000


class ForkableChain:
    """Blocks 0..head, each with a hash and its Task events; `fork_after(n)` drops the
    blocks after n, and later blocks get hashes of the new branch."""

    def __init__(self) -> None:
        self.branch = 0
        self.blocks: list[tuple[bytes, list[TaskEvent]]] = [(self._hash(0), [])]

    def _hash(self, number: int) -> bytes:
        return keccak(f"branch {self.branch} block {number}".encode())

    def mine(self, *makers: Callable[[int], TaskEvent | list[TaskEvent]]) -> int:
        number = len(self.blocks)
        events: list[TaskEvent] = []
        for make in makers:
            made = make(number)
            events.extend(made if isinstance(made, list) else [made])
        self.blocks.append((self._hash(number), events))
        return number

    def fork_after(self, number: int) -> None:
        self.branch += 1
        del self.blocks[number + 1 :]

    def head(self) -> int:
        return len(self.blocks) - 1

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        return [e for n in range(max(from_block, 0), min(to_block, self.head()) + 1) for e in self.blocks[n][1]]

    def block_hash(self, number: int) -> bytes | None:
        return self.blocks[number][0] if 0 <= number <= self.head() else None


def created(task_id: int, task_hash: bytes = b"\x01" * 32) -> Callable[[int], list[TaskEvent]]:
    def make(block: int) -> list[TaskEvent]:
        return [
            TaskCreated(
                block_number=block, log_index=i, tx_hash="0x", task_id=task_id, creator=CREATOR,
                selected_node=NODES[i], task_hash=task_hash, data_hash=b"\x00" * 32, round=i,
            )  # fmt: skip
            for i in range(3)
        ]

    return make


def success(task_id: int, result: bytes = b"\x07" * 8) -> Callable[[int], TaskEvent]:
    return lambda block: TaskSuccess(block_number=block, log_index=0, tx_hash="0x", task_id=task_id, result=result, result_node=NODES[0])


def aborted(task_id: int) -> Callable[[int], TaskEvent]:
    return lambda block: TaskAborted(block_number=block, log_index=0, tx_hash="0x", task_id=task_id, reason="Task Cancelled")


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    made: Storage = MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "relay.db")
    yield made
    made.close()


def _follower(chain: ForkableChain, storage: Storage) -> ChainFollower:
    return ChainFollower(chain, storage, clock=lambda: NOW, start_block=1)


def _upload_args(storage: Storage, task_id: int) -> None:
    task = storage.get_task(task_id)
    assert task is not None
    status = RelayTaskStatus.ARGS_UPLOADED if task.status is RelayTaskStatus.CREATED else task.status
    storage.put_task(dataclasses.replace(task, task_args=f'{{"task": {task_id}}}', status=status))


def _upload_images(storage: Storage, task_id: int, count: int = 2) -> None:
    task = storage.get_task(task_id)
    assert task is not None and task.status is RelayTaskStatus.PENDING_RESULTS
    storage.put_images(task_id, [bytes([task_id, i]) for i in range(count)])
    storage.put_task(dataclasses.replace(task, status=RelayTaskStatus.RESULTS_UPLOADED, image_count=count))


def _status(storage: Storage, task_id: int) -> RelayTaskStatus | None:
    task = storage.get_task(task_id)
    return None if task is None else task.status


def test_nothing_to_undo_when_the_chain_still_has_the_last_block_read(storage: Storage) -> None:
    chain = ForkableChain()
    chain.mine(created(1))
    follower = _follower(chain, storage)
    follower.catch_up()
    _upload_args(storage, 1)
    chain.mine()  # the chain moved on meanwhile: nothing lost
    before = storage.get_task(1)
    assert _follower(chain, storage).resume() is None
    assert storage.get_task(1) == before
    assert storage.block_cursor() == 2


def test_a_replaced_tail_at_the_same_height_is_found_by_its_hash(storage: Storage) -> None:
    """The case heights cannot see: the chain is as long as before, but not the same."""
    chain = ForkableChain()
    chain.mine(created(1))  # block 1: kept
    chain.mine()  # block 2: kept
    chain.mine(created(2), success(1))  # block 3: lost
    chain.mine(aborted(2))  # block 4: lost
    _follower(chain, storage).catch_up()
    _upload_args(storage, 1)
    _upload_args(storage, 2)
    _upload_images(storage, 1, count=3)
    assert (_status(storage, 1), _status(storage, 2)) == (RelayTaskStatus.RESULTS_UPLOADED, RelayTaskStatus.ABORTED)

    chain.fork_after(2)
    chain.mine(created(2, task_hash=b"\x02" * 32))  # task id 2 again, another task
    chain.mine()
    assert chain.head() == 4  # as high as what the Relay had read

    follower = _follower(chain, storage)
    rollback = follower.resume()
    assert rollback is not None
    assert (rollback.last_read, rollback.kept_up_to, rollback.head) == (4, 1, 4)
    assert [t.task_id for t in rollback.dropped] == [2]
    assert [t.task_id for t in rollback.successes_undone] == [1]
    assert rollback.aborts_undone == ()
    assert rollback.describe() == (
        "the chain (head 4) no longer has the blocks after 1 that the Relay had read (up to block 4): the Relay "
        "reads them again from block 2; task 2 (created in block 3) dropped, with its args; task 1's TaskSuccess "
        "of block 3 undone, its 3 uploaded images discarded; every other task and upload kept"
    )
    # Task 1 is as it was before its lost success: args kept, result and images gone.
    task = storage.get_task(1)
    assert task is not None and task.status is RelayTaskStatus.ARGS_UPLOADED and task.task_args == '{"task": 1}'
    assert task.result_node is None and task.image_count == 0 and storage.get_image(1, 0) is None
    assert storage.get_task(2) is None
    assert storage.block_cursor() == 2 and storage.cursor_hash() == chain.block_hash(1)

    follower.catch_up()  # the new branch's task 2, with its own hash, not the phantom's
    replaced = storage.get_task(2)
    assert replaced is not None and replaced.task_hash == b"\x02" * 32 and replaced.status is RelayTaskStatus.CREATED
    assert replaced.task_args == ""
    assert _follower(chain, storage).resume() is None


def test_a_chain_that_lost_its_last_blocks(storage: Storage) -> None:
    chain = ForkableChain()
    chain.mine(created(1))  # block 1
    chain.mine(success(1))  # block 2
    chain.mine(aborted(1))  # block 3: a late cancel, before any upload
    chain.mine()  # block 4
    _follower(chain, storage).catch_up()
    assert _status(storage, 1) is RelayTaskStatus.ABORTED
    chain.fork_after(2)  # blocks 3 and 4 lost; the chain is shorter
    rollback = _follower(chain, storage).resume()
    assert rollback is not None and (rollback.last_read, rollback.kept_up_to, rollback.head) == (4, 2, 2)
    assert [t.task_id for t in rollback.aborts_undone] == [1] and not rollback.dropped and not rollback.successes_undone
    assert "task 1's TaskAborted of block 3 undone" in rollback.describe()
    assert _status(storage, 1) is RelayTaskStatus.PENDING_RESULTS  # its success (block 2) stands
    assert storage.remembered_blocks() == {1: chain.block_hash(1), 2: chain.block_hash(2)}


def test_lost_blocks_that_brought_no_task(storage: Storage) -> None:
    chain = ForkableChain()
    chain.mine(created(1))
    chain.mine()
    chain.mine()
    _follower(chain, storage).catch_up()
    _upload_args(storage, 1)
    before = storage.get_task(1)
    chain.fork_after(1)
    chain.mine()
    rollback = _follower(chain, storage).resume()
    assert rollback is not None and rollback.kept_up_to == 1
    assert rollback.describe().endswith("no task came from them, nothing dropped")
    assert storage.get_task(1) == before


def test_every_block_replaced_back_to_the_start(storage: Storage) -> None:
    chain = ForkableChain()
    chain.mine(created(1))
    _follower(chain, storage).catch_up()
    chain.fork_after(0)
    chain.mine()
    rollback = _follower(chain, storage).resume()
    assert rollback is not None and rollback.kept_up_to == 0 and [t.task_id for t in rollback.dropped] == [1]
    assert storage.block_cursor() == 1 and storage.cursor_hash() == chain.block_hash(0)


def test_without_a_recorded_hash_heights_are_compared(storage: Storage) -> None:
    # A database from before hashes were kept (or a chain without them).
    chain = ForkableChain()
    chain.mine(created(1))
    chain.mine(created(2))
    _follower(chain, storage).catch_up()
    storage.set_block_cursor(3, None)
    chain.fork_after(1)
    rollback = _follower(chain, storage).resume()
    assert rollback is not None and rollback.kept_up_to == 1 and [t.task_id for t in rollback.dropped] == [2]
    assert _status(storage, 1) is RelayTaskStatus.CREATED


def test_a_relay_database_written_before_block_hashes_were_kept(tmp_path: Path) -> None:
    """The first databases: no block columns, the cursor in `meta`. They open, and
    their tasks and cursor carry over."""
    path = tmp_path / "relay.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE tasks (task_id TEXT PRIMARY KEY, row_id INTEGER NOT NULL, creator TEXT NOT NULL,
            task_hash BLOB NOT NULL, data_hash BLOB NOT NULL, status INTEGER NOT NULL, created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL, task_args TEXT NOT NULL, image_count INTEGER NOT NULL);
        INSERT INTO meta VALUES ('block_cursor', 8), ('row_id:task', 1);
        INSERT INTO tasks VALUES ('1', 1, 'C', x'01', x'00', 1, 5, 6, '{}', 0);
        """
    )
    old.commit()
    old.close()
    storage = SqliteStorage(path)
    try:
        assert (storage.block_cursor(), storage.cursor_hash()) == (8, None)
        task = storage.get_task(1)
        assert task is not None and task.task_args == "{}" and task.created_block is None
        storage.set_block_cursor(9, b"\xaa" * 32)
    finally:
        storage.close()
    again = SqliteStorage(path)
    try:
        assert (again.block_cursor(), again.cursor_hash()) == (9, b"\xaa" * 32)
    finally:
        again.close()


def test_a_rollback_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    chain = ForkableChain()
    chain.mine(created(1))
    chain.mine(created(2))
    first = SqliteStorage(path)
    _follower(chain, first).catch_up()
    first.close()
    chain.fork_after(1)
    chain.mine()
    second = SqliteStorage(path)
    assert _follower(chain, second).resume() is not None
    second.close()
    third = SqliteStorage(path)
    try:
        assert third.get_task(2) is None and third.get_task(1) is not None
        assert _follower(chain, third).resume() is None
    finally:
        third.close()
