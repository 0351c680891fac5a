"""The sandbox's Relay across restarts: its state files, a damaged database, and a
chain that lost blocks the Relay had read."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.fakes.relay import ContractChainSource, RelayService, SqliteStorage, create_app, in_process_client
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.phash import result_bytes
from hydrogen_harness.protocol.constants import CNX, commitment_of
from hydrogen_harness.client.relay import NO_RETRY, RelayClient, RelayTaskStatus
from hydrogen_harness.sandbox.core import Sandbox, SandboxError, SandboxOptions
from hydrogen_harness.sandbox.state import SandboxState
from hydrogen_harness.protocol.task_args import task_hash
from tests.relay.wire import Wire, assert_refused
from tests.relay.world import Clock, gradient_png, task_args_json


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# ---------------------------------------------------------------- owner-only state


def test_the_state_folder_and_its_files_are_owner_only(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    state = SandboxState(tmp_path / "made" / "state")
    assert _mode(state.folder) == 0o700
    assert _mode(tmp_path) == 0o755  # a folder the sandbox did not make keeps its mode
    state.acquire()
    try:
        state.write_info({"app": {"private_key": "0x" + "11" * 32}})
        state.save_clock_offset(5)
        files = {path.name: _mode(path) for path in state.folder.iterdir()}
        assert files == {".lock": 0o600, "sandbox.json": 0o600, "clock.json": 0o600}
    finally:
        state.release()


def test_a_readable_sandbox_json_of_an_earlier_run_is_rewritten_owner_only(tmp_path: Path) -> None:
    state = SandboxState(tmp_path)
    state.info_path.write_text("{}")
    os.chmod(state.info_path, 0o644)
    state.write_info({"pid": 1})
    assert _mode(state.info_path) == 0o600
    assert state.previous_info() == {"pid": 1}


def test_state_set_aside_is_owner_only(tmp_path: Path) -> None:
    state = SandboxState(tmp_path)
    state.journal_path.write_text("")
    moved = state.set_aside()
    assert moved is not None and _mode(moved) == 0o700
    assert (moved / "chain.jsonl").exists() and not state.journal_path.exists()


# ---------------------------------------------------------------- a damaged Relay database


def _sandbox(state: Path, log: list[str]) -> Sandbox:
    options = SandboxOptions(state=state, rpc_port=0, relay_port=0, behaviours=[])
    return Sandbox(options, log=log.append)


@pytest.mark.parametrize("damage", ["not a database", "truncated"])
def test_a_damaged_relay_database_is_set_aside_and_the_chain_kept(tmp_path: Path, damage: str) -> None:
    first: list[str] = []
    with _sandbox(tmp_path, first) as sandbox:
        db = Path(sandbox.info["relay_db"])
        task_address = sandbox.info["contracts"]["task"]
    blocks = (tmp_path / "chain.jsonl").read_bytes()
    original = db.read_bytes()
    db.write_bytes(b"this is not SQLite " * 100 if damage == "not a database" else original[: len(original) // 2])
    damaged = db.read_bytes()

    log: list[str] = []
    with _sandbox(tmp_path, log) as sandbox:
        assert sandbox.info["contracts"]["task"] == task_address  # the chain was kept, not redeployed
        assert (tmp_path / "chain.jsonl").read_bytes().startswith(blocks)
        [line] = [line for line in log if "Relay's database" in line]
        assert f"the Relay's database {db} is damaged" in line and "the Relay starts afresh from the chain" in line
        [stale] = list(tmp_path.glob("stale-*"))
        assert f"moved it to {stale}" in line
        assert (stale / db.name).read_bytes() == damaged  # kept, for whoever wants to look
        # The new Relay answers (a 400 for an unknown task, not a 500 of a broken database).
        response = httpx.get(f"{sandbox.relay_url}/v1/inference_tasks/1", params={"timestamp": 1, "signature": "0x00"})
        assert response.status_code == 400 and response.json()["data"]["field_name"] == "signature"
        assert _mode(db) == 0o600


def test_a_relay_database_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    with _sandbox(tmp_path, []) as sandbox:
        db = Path(sandbox.info["relay_db"])
    for path in tmp_path.glob(db.name + "*"):
        path.unlink()
    db.mkdir()  # something that is no file at all: not "damaged", not ours to move
    with pytest.raises(SandboxError, match=f"cannot open the Relay's database {db}"):
        _sandbox(tmp_path, []).start()
    assert db.is_dir() and not list(tmp_path.glob("stale-*"))


# ---------------------------------------------------------------- a chain whose tail was replaced


@dataclass
class Restartable:
    """A Relay on an SQLite file over a real in-memory chain, restartable at will."""

    chain: Chain
    deployment: Deployment
    path: Path
    clock: Clock

    @contextlib.contextmanager
    def running(self) -> Iterator[tuple[RelayService, Wire]]:
        storage = SqliteStorage(self.path)
        service = RelayService(ContractChainSource(self.deployment.task), storage, clock=self.clock)
        try:
            with in_process_client(create_app(service)) as http:
                yield service, Wire(http, self.clock)
        finally:
            storage.close()


def _succeed(deployment: Deployment, nodes: dict[str, LocalAccount], task_id: int, selected: tuple[str, ...], images: list[bytes]) -> None:
    result = result_bytes(images)
    for round_, address in enumerate(selected):
        nonce = bytes([round_ + 1]) * 32
        deployment.task.submit_commitment(nodes[address], task_id, round_, commitment_of(result, nonce), nonce)
    for round_, address in enumerate(selected):
        deployment.task.disclose(nodes[address], task_id, round_, result)


def test_a_relay_on_a_chain_whose_tail_was_replaced_keeps_all_but_the_lost_blocks(tmp_path: Path) -> None:
    """As after a kill -9 that lost the chain's last blocks, then new ones were mined
    at the same heights: the phantom task 2 must go, or the real task 2's args are
    refused "Task hash mismatch" forever; task 1's args must stay."""
    chain = Chain.in_memory(seed=5)
    deployment = deploy(chain)
    # Six nodes: after the revert, the three of task 1 are busy with it again.
    nodes = {node.address: node for node in (deployment.new_node() for _ in range(6))}
    app = deployment.new_app(cnx=1_000 * CNX, approve=1_000 * CNX)
    relay = Restartable(chain, deployment, tmp_path / "relay.sqlite", Clock(0))

    args_1 = task_args_json("task 1, made before the lost blocks", 2)
    task_1 = deployment.task.create_task(app, task_hash(args_1))
    chain.mine()  # eth-tester re-executes the latest block on revert: keep createTask out of it
    relay.clock.now = chain.now()
    with relay.running() as (_, wire):
        assert wire.post_args(app, task_1.task_id, args_1).status_code == 200
    snapshot = chain.snapshot()

    # The blocks about to be lost: a second task with its args, task 1's success and images.
    args_2 = task_args_json("the phantom task 2", 1)
    phantom = deployment.task.create_task(app, task_hash(args_2))
    images = [gradient_png(7), gradient_png(8)]
    _succeed(deployment, nodes, task_1.task_id, task_1.selected_nodes, images)
    lost_head = chain.block_number
    relay.clock.now = chain.now()
    with relay.running() as (service, wire):
        assert wire.post_args(app, phantom.task_id, args_2).status_code == 200
        result_node = service.task(task_1.task_id).result_node  # type: ignore[union-attr]
        assert result_node is not None
        assert wire.upload(nodes[result_node.address], task_1.task_id, images).status_code == 200

    chain.revert(snapshot)
    other = deployment.new_app(cnx=1_000 * CNX, approve=1_000 * CNX)
    args_2b = task_args_json("the real task 2", 3)
    real = deployment.task.create_task(other, task_hash(args_2b))
    while chain.block_number < lost_head:
        chain.mine()
    assert real.task_id == phantom.task_id and chain.block_number == lost_head  # same id, same height
    relay.clock.now = chain.now()

    with relay.running() as (service, wire):
        rollback = service.resume()
        assert rollback is not None
        assert [t.task_id for t in rollback.dropped] == [phantom.task_id]
        assert [t.task_id for t in rollback.successes_undone] == [task_1.task_id]
        line = rollback.describe()
        assert f"task {phantom.task_id} (created in block {phantom.receipt['blockNumber']}) dropped, with its args" in line
        assert f"task {task_1.task_id}'s TaskSuccess of block" in line and "its 2 uploaded images discarded" in line
        # Task 1 keeps its args, is no longer successful; the real task 2 takes its args.
        first = wire.get_task(app, task_1.task_id)
        assert first.status_code == 200, first.text
        assert first.json()["data"]["task_args"] == args_1
        assert first.json()["data"]["status"] == RelayTaskStatus.ARGS_UPLOADED
        assert wire.post_args(other, real.task_id, args_2b).status_code == 200
        assert_refused(wire.get_result(app, task_1.task_id, "0"), "task_id", "Task results not uploaded")


def test_a_relay_whose_chain_kept_every_block_keeps_everything(tmp_path: Path) -> None:
    chain = Chain.in_memory(seed=5)
    deployment = deploy(chain)
    for _ in range(3):
        deployment.new_node()
    app = deployment.new_app(cnx=1_000 * CNX, approve=1_000 * CNX)
    relay = Restartable(chain, deployment, tmp_path / "relay.sqlite", Clock(0))
    args = task_args_json("kept", 1)
    task = deployment.task.create_task(app, task_hash(args))
    relay.clock.now = chain.now()
    with relay.running() as (_, wire):
        assert wire.post_args(app, task.task_id, args).status_code == 200
    chain.mine()
    with relay.running() as (service, wire):
        assert service.resume() is None
        assert wire.get_task(app, task.task_id).json()["data"]["task_args"] == args


def test_the_sandbox_rolls_its_relay_back_to_the_chain_it_rebuilt(tmp_path: Path) -> None:
    """A restart whose journal lost the last blocks (as a kill -9 before the journal
    was written could): the Relay drops the task of those blocks, says so in the log,
    and keeps the uploads of the blocks that survived."""
    options = SandboxOptions(state=tmp_path, rpc_port=0, relay_port=0, behaviours=["offline"] * 6)
    with Sandbox(options, log=lambda _: None) as sandbox:
        assert sandbox._deployment is not None
        deployment = sandbox._deployment
        app = deployment.new_app(cnx=1_000 * CNX, approve=1_000 * CNX)
        kept_args, lost_args = task_args_json("kept", 1), task_args_json("lost", 1)
        kept = deployment.task.create_task(app, task_hash(kept_args))
        lost = deployment.task.create_task(app, task_hash(lost_args))
        lost_block = int(lost.receipt["blockNumber"])
        assert lost_block > int(kept.receipt["blockNumber"])
        with RelayClient(sandbox.relay_url, clock=lambda: int(time.time()), retry=NO_RETRY) as relay:
            relay.upload_task_args(app, kept.task_id, kept_args)
            relay.upload_task_args(app, lost.task_id, lost_args)
    journal = tmp_path / "chain.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    header, blocks = lines[0], lines[1:]
    journal.write_text(header + "".join(line for line in blocks if json.loads(line)["n"] < lost_block))

    log: list[str] = []
    with Sandbox(options, log=log.append) as sandbox:
        [line] = [line for line in log if "that the Relay had read" in line]
        assert f"task {lost.task_id} (created in block {lost_block}) dropped, with its args" in line
        assert "every other task and upload kept" in line
        with RelayClient(sandbox.relay_url, clock=lambda: int(time.time()), retry=NO_RETRY) as relay:
            assert relay.get_task(app, kept.task_id).task_args == kept_args
