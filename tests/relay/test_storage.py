"""The two storages behave alike: records, images, cursor, row ids, transactions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from hydrogen_harness.fakes.relay import MemoryStorage, RowKind, SelectedNodeRecord, SqliteStorage, Storage, TaskRecord
from hydrogen_harness.client.relay import RelayTaskStatus

NODE = SelectedNodeRecord(row_id=7, round=0, address="0x" + "ab" * 20, created_at=5, updated_at=6)


def _task(task_id: int = 3) -> TaskRecord:
    # Row ids are unique per table, as the service allocates them.
    first = NODE.row_id + 10 * (task_id % 1000)
    return TaskRecord(
        row_id=task_id % 1000,
        task_id=task_id,
        creator="0x" + "12" * 20,
        task_hash=b"\x01" * 32,
        data_hash=b"\x00" * 32,
        status=RelayTaskStatus.CREATED,
        created_at=100,
        updated_at=101,
        selected_nodes=(
            dataclasses.replace(NODE, row_id=first),
            dataclasses.replace(NODE, row_id=first + 1, round=1, result=b"\x00\xff" * 4, is_result_selected=True),
        ),
    )


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    made: Storage = MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "relay.db")
    yield made
    made.close()


def test_empty(storage: Storage) -> None:
    assert storage.block_cursor() is None
    assert storage.get_task(1) is None
    assert storage.get_image(1, 0) is None


def test_a_task_round_trips(storage: Storage) -> None:
    task = _task()
    storage.put_task(task)
    assert storage.get_task(3) == task
    updated = dataclasses.replace(task, status=RelayTaskStatus.RESULTS_UPLOADED, task_args="{}", image_count=2)
    storage.put_task(updated)
    assert storage.get_task(3) == updated


def test_task_ids_beyond_64_bits(storage: Storage) -> None:
    task = _task(task_id=2**255 + 1)
    storage.put_task(task)
    assert storage.get_task(2**255 + 1) == task
    assert storage.get_task(1) is None


def test_row_ids_count_per_kind(storage: Storage) -> None:
    assert [storage.next_row_id(RowKind.TASK) for _ in range(3)] == [1, 2, 3]
    assert storage.next_row_id(RowKind.SELECTED_NODE) == 1


def test_images(storage: Storage) -> None:
    storage.put_images(3, [b"a", b"bb"])
    assert (storage.get_image(3, 0), storage.get_image(3, 1), storage.get_image(3, 2)) == (b"a", b"bb", None)
    storage.put_images(3, [b"c"])
    assert (storage.get_image(3, 0), storage.get_image(3, 1)) == (b"c", None)


def test_a_failed_transaction_leaves_nothing(storage: Storage) -> None:
    storage.put_task(_task())
    storage.set_block_cursor(10)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.put_task(dataclasses.replace(_task(), status=RelayTaskStatus.ABORTED))
        storage.put_task(_task(task_id=4))
        storage.put_images(3, [b"x"])
        storage.set_block_cursor(20)
        storage.next_row_id(RowKind.TASK)
        raise RuntimeError("half way")
    assert storage.get_task(3) == _task()
    assert storage.get_task(4) is None
    assert storage.get_image(3, 0) is None
    assert storage.block_cursor() == 10
    assert storage.next_row_id(RowKind.TASK) == 1


def test_a_failed_transaction_undoes_deletes_replacements_and_a_reset(storage: Storage) -> None:
    storage.put_task(_task())
    storage.put_task(_task(task_id=5))
    storage.put_images(3, [b"x", b"y"])
    storage.set_block_cursor(10, b"\x0a" * 32)
    storage.remember_block(9, b"\x09" * 32)
    storage.next_row_id(RowKind.TASK)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.delete_task(3)
        storage.put_images(5, [b"z"])
        with storage.transaction():  # joins the outer one
            storage.put_task(dataclasses.replace(_task(task_id=5), status=RelayTaskStatus.ABORTED))
        storage.reset()
        storage.put_task(_task(task_id=6))
        storage.remember_block(30, b"\x1e" * 32)
        storage.next_row_id(RowKind.TASK)
        raise RuntimeError("half way")
    assert (storage.get_task(3), storage.get_task(5), storage.get_task(6)) == (_task(), _task(task_id=5), None)
    assert (storage.get_image(3, 1), storage.get_image(5, 0)) == (b"y", None)
    assert (storage.block_cursor(), storage.cursor_hash()) == (10, b"\x0a" * 32)
    assert storage.remembered_blocks() == {9: b"\x09" * 32}
    assert storage.next_row_id(RowKind.TASK) == 2


def test_a_transaction_that_ends_keeps_its_writes(storage: Storage) -> None:
    storage.put_task(_task())
    with storage.transaction():
        storage.delete_task(3)
        storage.put_task(_task(task_id=4))
        storage.remember_block(7, b"\x07" * 32)
    with pytest.raises(RuntimeError), storage.transaction():
        raise RuntimeError("a later transaction fails")  # undoes nothing of the one before
    assert (storage.get_task(3), storage.get_task(4)) == (None, _task(task_id=4))
    assert storage.remembered_blocks() == {7: b"\x07" * 32}


def test_reset(storage: Storage) -> None:
    storage.put_task(_task())
    storage.put_images(3, [b"x"])
    storage.set_block_cursor(5)
    storage.next_row_id(RowKind.TASK)
    storage.reset()
    assert (storage.get_task(3), storage.get_image(3, 0), storage.block_cursor()) == (None, None, None)
    assert storage.next_row_id(RowKind.TASK) == 1


def test_sqlite_keeps_everything_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    first = SqliteStorage(path)
    first.put_task(_task())
    first.put_images(3, [b"png"])
    first.set_block_cursor(42)
    first.next_row_id(RowKind.SELECTED_NODE)
    first.close()
    second = SqliteStorage(path)
    assert second.get_task(3) == _task()
    assert second.get_image(3, 0) == b"png"
    assert second.block_cursor() == 42
    assert second.next_row_id(RowKind.SELECTED_NODE) == 2
    second.close()


def test_the_cursor_keeps_the_hash_of_the_last_block_read(storage: Storage) -> None:
    assert storage.cursor_hash() is None
    storage.set_block_cursor(5, b"\x05" * 32)
    assert (storage.block_cursor(), storage.cursor_hash()) == (5, b"\x05" * 32)
    storage.set_block_cursor(6)  # read on a chain without block hashes
    assert (storage.block_cursor(), storage.cursor_hash()) == (6, None)


def test_remembered_blocks(storage: Storage) -> None:
    for number in (3, 7, 9):
        storage.remember_block(number, bytes([number]) * 32)
    assert storage.remembered_blocks() == {3: b"\x03" * 32, 7: b"\x07" * 32, 9: b"\x09" * 32}
    storage.forget_blocks_after(7)
    assert storage.remembered_blocks() == {3: b"\x03" * 32, 7: b"\x07" * 32}


def test_tasks_by_the_blocks_they_came_from_and_deleting_one(storage: Storage) -> None:
    storage.put_task(dataclasses.replace(_task(3), created_block=10))
    storage.put_task(dataclasses.replace(_task(4), created_block=5, success_block=12))
    storage.put_task(dataclasses.replace(_task(5), created_block=5, success_block=6, aborted_block=11))
    storage.put_task(_task(6))  # from an older Relay: no blocks known
    assert sorted(t.task_id for t in storage.tasks_from_blocks_after(10)) == [4, 5]
    assert sorted(t.task_id for t in storage.tasks_from_blocks_after(9)) == [3, 4, 5]
    assert storage.tasks_from_blocks_after(12) == []
    assert storage.get_task(4) == dataclasses.replace(_task(4), created_block=5, success_block=12)
    storage.put_images(3, [b"a"])
    storage.delete_task(3)
    assert storage.get_task(3) is None and storage.get_image(3, 0) is None
    assert storage.get_task(4) is not None


def test_a_failed_transaction_leaves_the_cursor_hash_and_blocks(storage: Storage) -> None:
    storage.set_block_cursor(10, b"\x0a" * 32)
    storage.remember_block(9, b"\x09" * 32)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.set_block_cursor(20, b"\x14" * 32)
        storage.remember_block(19, b"\x13" * 32)
        storage.forget_blocks_after(0)
        raise RuntimeError("half way")
    assert (storage.block_cursor(), storage.cursor_hash()) == (10, b"\x0a" * 32)
    assert storage.remembered_blocks() == {9: b"\x09" * 32}


def test_reset_forgets_blocks_too(storage: Storage) -> None:
    storage.set_block_cursor(10, b"\x0a" * 32)
    storage.remember_block(9, b"\x09" * 32)
    storage.reset()
    assert (storage.block_cursor(), storage.cursor_hash(), storage.remembered_blocks()) == (None, None, {})
