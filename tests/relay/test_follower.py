"""How the Relay follows the chain, on scripted events: statuses, pages, cursor."""

from __future__ import annotations

import dataclasses

import pytest

from hydrogen_harness.fakes.relay import ChainFollower, MemoryStorage, RelayInternalError
from hydrogen_harness.fakes.relay.follower import PAGE_BLOCKS
from hydrogen_harness.protocol.events import TaskAborted, TaskCreated, TaskEvent, TaskResultCommitmentsReady, TaskSuccess
from hydrogen_harness.client.relay import RelayTaskStatus

CREATOR = "0x" + "C0" * 20
NODES = ["0x" + f"{i}{i}" * 20 for i in range(1, 4)]


class ScriptedChain:
    """A chain whose Task events are a list; records every range asked for."""

    def __init__(self, head: int = 0) -> None:
        self.head_block = head
        self.script: list[TaskEvent] = []
        self.asked: list[tuple[int, int]] = []

    def head(self) -> int:
        return self.head_block

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        self.asked.append((from_block, to_block))
        return [e for e in self.script if from_block <= e.block_number <= to_block]

    def block_hash(self, number: int) -> bytes | None:
        return number.to_bytes(32, "big") if 0 <= number <= self.head_block else None

    def add(self, event: TaskEvent) -> None:
        self.script.append(event)
        self.head_block = max(self.head_block, event.block_number)


def created(task_id: int, block: int) -> list[TaskEvent]:
    return [
        TaskCreated(
            block_number=block, log_index=i, tx_hash="0x", task_id=task_id, creator=CREATOR,
            selected_node=NODES[i], task_hash=b"\x01" * 32, data_hash=b"\x00" * 32, round=i,
        )  # fmt: skip
        for i in range(3)
    ]


def success(task_id: int, block: int, node: int = 1) -> TaskSuccess:
    return TaskSuccess(block_number=block, log_index=0, tx_hash="0x", task_id=task_id, result=b"\x07" * 8, result_node=NODES[node])


def aborted(task_id: int, block: int) -> TaskAborted:
    return TaskAborted(block_number=block, log_index=0, tx_hash="0x", task_id=task_id, reason="Task Cancelled")


@pytest.fixture
def chain() -> ScriptedChain:
    return ScriptedChain()


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def follower(chain: ScriptedChain, storage: MemoryStorage) -> ChainFollower:
    return ChainFollower(chain, storage, clock=lambda: 1_700_000_000)


def _status(storage: MemoryStorage, task_id: int) -> RelayTaskStatus | None:
    task = storage.get_task(task_id)
    return None if task is None else task.status


def test_task_created_records_the_task_and_its_nodes_by_round(chain: ScriptedChain, storage: MemoryStorage, follower: ChainFollower) -> None:
    for event in reversed(created(1, 5)):  # rounds in any log order
        chain.add(event)
    assert follower.catch_up() == 3
    task = storage.get_task(1)
    assert task is not None
    assert task.status is RelayTaskStatus.CREATED
    assert task.creator == CREATOR
    assert [node.address for node in task.selected_nodes] == NODES
    assert [node.round for node in task.selected_nodes] == [0, 1, 2]


def test_a_repeated_log_is_applied_once(chain: ScriptedChain, storage: MemoryStorage, follower: ChainFollower) -> None:
    for event in created(1, 5) + created(1, 5):
        chain.add(event)
    follower.catch_up()
    task = storage.get_task(1)
    assert task is not None and len(task.selected_nodes) == 3


def test_success_marks_the_result_node(chain: ScriptedChain, storage: MemoryStorage, follower: ChainFollower) -> None:
    for event in [*created(1, 5), TaskResultCommitmentsReady(block_number=6, log_index=0, tx_hash="0x", task_id=1), success(1, 7)]:
        chain.add(event)
    follower.catch_up()
    task = storage.get_task(1)
    assert task is not None and task.status is RelayTaskStatus.PENDING_RESULTS
    assert task.result_node is not None and task.result_node.address == NODES[1]
    assert task.result_node.result == b"\x07" * 8


def test_events_of_unknown_tasks_are_ignored(chain: ScriptedChain, storage: MemoryStorage, follower: ChainFollower) -> None:
    chain.add(success(9, 3))
    chain.add(aborted(9, 4))
    follower.catch_up()
    assert storage.get_task(9) is None


def test_an_abort_is_final(chain: ScriptedChain, storage: MemoryStorage, follower: ChainFollower) -> None:
    for event in [*created(1, 5), aborted(1, 6), success(1, 7)]:
        chain.add(event)
    follower.catch_up()
    assert _status(storage, 1) is RelayTaskStatus.ABORTED


def test_a_late_abort_keeps_uploaded_results(chain: ScriptedChain, storage: MemoryStorage, follower: ChainFollower) -> None:
    for event in [*created(1, 5), success(1, 6)]:
        chain.add(event)
    follower.catch_up()
    task = storage.get_task(1)
    assert task is not None
    storage.put_task(dataclasses.replace(task, status=RelayTaskStatus.RESULTS_UPLOADED))
    chain.add(aborted(1, 8))
    follower.catch_up()
    assert _status(storage, 1) is RelayTaskStatus.RESULTS_UPLOADED


def test_reads_in_pages_and_keeps_its_cursor(chain: ScriptedChain, storage: MemoryStorage, follower: ChainFollower) -> None:
    for event in created(1, 10):
        chain.add(event)
    chain.add(success(1, PAGE_BLOCKS + 3))
    chain.head_block = 2 * PAGE_BLOCKS + 5
    follower.catch_up()
    assert chain.asked == [(0, PAGE_BLOCKS - 1), (PAGE_BLOCKS, 2 * PAGE_BLOCKS - 1), (2 * PAGE_BLOCKS, 2 * PAGE_BLOCKS + 5)]
    assert storage.block_cursor() == 2 * PAGE_BLOCKS + 6
    assert _status(storage, 1) is RelayTaskStatus.PENDING_RESULTS
    chain.asked.clear()
    follower.catch_up()
    assert chain.asked == []  # nothing new


def test_starts_at_the_given_block(chain: ScriptedChain, storage: MemoryStorage) -> None:
    for event in created(1, 3) + created(2, 50):
        chain.add(event)
    ChainFollower(chain, storage, clock=lambda: 0, start_block=40).catch_up()
    assert chain.asked == [(40, 50)]
    assert storage.get_task(1) is None and storage.get_task(2) is not None


def test_a_chain_that_went_backwards_is_an_error(chain: ScriptedChain, follower: ChainFollower) -> None:
    chain.head_block = 20
    follower.catch_up()
    chain.head_block = 10  # reverted under the Relay
    with pytest.raises(RelayInternalError, match="reverted under the Relay"):
        follower.catch_up()


def test_the_lock_is_held_around_chain_reads(chain: ScriptedChain, storage: MemoryStorage) -> None:
    held: list[bool] = []

    class Lock:
        def __init__(self) -> None:
            self.depth = 0

        def __enter__(self) -> None:
            self.depth += 1

        def __exit__(self, *exc: object) -> None:
            self.depth -= 1

    lock = Lock()

    class Watched(ScriptedChain):
        def head(self) -> int:
            held.append(lock.depth > 0)
            return super().head()

        def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
            held.append(lock.depth > 0)
            return super().events(from_block, to_block)

    watched = Watched(head=3)
    ChainFollower(watched, storage, clock=lambda: 0, lock=lock).catch_up()
    assert held == [True, True]
