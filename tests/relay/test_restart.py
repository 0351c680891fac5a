"""A Relay restarted on the same SQLite file keeps args, images, cursor and statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydrogen_harness.fakes.relay import ChainSource, RelayService, RowKind, SqliteStorage, create_app, in_process_client
from hydrogen_harness.protocol.events import TaskEvent
from hydrogen_harness.client.relay import RelayTaskStatus
from tests.relay.wire import Wire
from tests.relay.world import RelayWorld


class CountingSource:
    """A ChainSource that records the block ranges it is asked for."""

    def __init__(self, source: ChainSource) -> None:
        self.source = source
        self.asked: list[tuple[int, int]] = []

    def head(self) -> int:
        return self.source.head()

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        self.asked.append((from_block, to_block))
        return self.source.events(from_block, to_block)

    def block_hash(self, number: int) -> bytes | None:
        return self.source.block_hash(number)


class Running:
    """One run of the Relay process: a storage on the file, a service, an app."""

    def __init__(self, world: RelayWorld, path: Path) -> None:
        self.storage = SqliteStorage(path)
        self.source = CountingSource(world.history)
        self.service = RelayService(self.source, self.storage, clock=world.clock)
        self.http = in_process_client(create_app(self.service))
        self.wire = Wire(self.http, world.clock)

    def stop(self) -> None:
        self.http.close()
        self.storage.close()


def _snapshot(wire: Wire, world: RelayWorld) -> dict[str, Any]:
    """Everything a client can read about the world's tasks."""
    seen: dict[str, Any] = {}
    for name in ("created", "succeeded"):
        task = getattr(world, name)
        seen[name] = wire.get_task(world.creator, task.task_id).json()
    for index in range(len(world.succeeded.images)):
        seen[f"image {index}"] = wire.get_result(world.creator, world.succeeded.task_id, str(index)).content
    return seen


def test_a_restart_keeps_everything(world: RelayWorld, tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    first = Running(world, path)
    for task in (world.created, world.succeeded):
        assert first.wire.post_args(world.creator, task.task_id, task.args).status_code == 200
    task = world.succeeded
    assert first.wire.upload(task.result_node, task.task_id, task.images).status_code == 200
    before = _snapshot(first.wire, world)
    cursor = first.storage.block_cursor()
    assert first.source.asked == [(0, world.chain.block_number)]
    first.stop()

    second = Running(world, path)
    try:
        assert second.storage.block_cursor() == cursor
        assert _snapshot(second.wire, world) == before
        assert second.source.asked == []  # the cursor was kept: no block read again
        assert before["succeeded"]["data"]["status"] == RelayTaskStatus.RESULTS_UPLOADED
        assert before["created"]["data"]["status"] == RelayTaskStatus.ARGS_UPLOADED
        response = second.wire.post_args(world.creator, world.created.task_id, world.created.args)
        assert response.status_code == 400 and response.json()["data"]["message"] == "Task already uploaded"
    finally:
        second.stop()


def test_events_after_a_restart_continue_from_the_cursor(chain_isolated: RelayWorld, tmp_path: Path) -> None:
    world = chain_isolated
    path = tmp_path / "relay.db"
    first = Running(world, path)
    task = world.succeeded
    assert first.wire.post_args(world.creator, world.created.task_id, world.created.args).status_code == 200
    assert first.wire.upload(task.result_node, task.task_id, task.images).status_code == 200
    head_before = world.chain.block_number
    first.stop()

    # While the Relay is down, both live tasks time out and are cancelled.
    world.chain.advance(world.deployment.task.timeout() + 1)
    world.clock.now = world.chain.now()
    world.deployment.task.cancel(world.creator, world.succeeded.task_id)
    world.deployment.task.cancel(world.creator, world.created.task_id)

    second = Running(world, path)
    try:
        second.service.catch_up()
        assert second.source.asked == [(head_before + 1, world.chain.block_number)]
        statuses = {name: second.service.task(getattr(world, name).task_id).status for name in ("created", "succeeded")}  # type: ignore[union-attr]
        assert statuses == {"created": RelayTaskStatus.ABORTED, "succeeded": RelayTaskStatus.RESULTS_UPLOADED}
        image = second.wire.get_result(world.creator, task.task_id, "2")
        assert image.status_code == 200 and image.content == task.images[2]
    finally:
        second.stop()

    third = Running(world, path)
    try:
        record = third.service.task(world.created.task_id)
        assert record is not None and record.status is RelayTaskStatus.ABORTED
        assert record.task_args == world.created.args
    finally:
        third.stop()


def test_row_ids_continue_after_a_restart(world: RelayWorld, tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    first = Running(world, path)
    first.service.catch_up()
    ids = sorted(first.service.task(t.task_id).row_id for t in (world.aborted, world.succeeded, world.created))  # type: ignore[union-attr]
    first.stop()
    second = Running(world, path)
    try:
        assert ids == [1, 2, 3]
        assert second.storage.next_row_id(RowKind.TASK) == 4
        assert second.storage.next_row_id(RowKind.SELECTED_NODE) == 10
    finally:
        second.stop()
