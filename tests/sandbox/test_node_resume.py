"""The sandbox's nodes keep their tasks in flight in the state folder and resume them
after a restart (issue 13, item 10), as real nodes do from their databases.

Each scenario stops a task at a protocol point with a `crash:POINT` behaviour (the
node stops acting there, as if its process had died), closes the sandbox, starts
it again on the same state folder with honest nodes, and checks that the task
completes with exact payments instead of holding its nodes until the deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from hydrogen_harness.fakes.node import NodeTaskPhase
from hydrogen_harness.sim.network import Network
from hydrogen_harness.sandbox.node_store import NodeTaskFile
from hydrogen_harness.protocol.phash import result_bytes
from hydrogen_harness.protocol.constants import CNX, NodeStatus
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions
from tests.sandbox.app_load import ARGS, app_for, args_json, contracts_of, live_task_balances

pytestmark = pytest.mark.slow

FEE = 10 * CNX
WAIT = 30.0  # seconds any one condition may take on a loaded 2-core machine


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def sandbox(state: Path, behaviours: list[str], logs: list[str]) -> Sandbox:
    started = Sandbox(SandboxOptions(state=state, rpc_port=0, relay_port=0, behaviours=behaviours), log=logs.append)
    started.start()
    return started


def store_records(state: Path) -> dict[str, dict[str, Any]]:
    """Every node store's tasks, by file name."""
    return {path.name: json.loads(path.read_text())["tasks"] for path in sorted((state / "nodes").glob("*.json"))}


def start_task_and_stop_at(state: Path, behaviours: list[str], crashes: int) -> dict[str, Any]:
    """Run a sandbox until `crashes` nodes have crashed and the rest are idle; stop it.
    Returns what the second run checks against: wallet, task id, balances before the task."""
    logs: list[str] = []
    first = sandbox(state, behaviours, logs)
    try:
        wallet = first.new_wallet(cnx=100 * CNX)
        info = first.info
        _, token, _, _ = contracts_of(info)
        nodes = [node["address"] for node in info["nodes"]]
        before = {address: token.functions.balanceOf(address).call() for address in [wallet.address, *nodes]}
        with app_for(info, wallet.key) as app:
            task_args = args_json(ARGS)
            task_id, block = app.create_task(task_args)
            app.upload_args(task_id, task_args)
        wait_for(lambda: sum(n.crashed for n in first.all_nodes) == crashes, f"{crashes} node(s) crashed")
        assert first.wait_until_idle(WAIT)
    finally:
        first.close()
    return {"wallet": wallet, "task_id": task_id, "block": block, "before": before, "nodes": nodes}


def finish_after_restart(state: Path, run: dict[str, Any]) -> tuple[Sandbox, list[str]]:
    """Start the sandbox again with honest nodes; check the task completes and pays exactly."""
    logs: list[str] = []
    second = sandbox(state, ["honest"] * 3, logs)
    try:
        info = second.info
        _, token, node, task = contracts_of(info)
        with app_for(info, run["wallet"].key, timeout=WAIT) as app:
            outcome = app.wait(run["task_id"], run["block"])
            assert outcome["event"] == "TaskSuccess", outcome
            images = [app.download(run["task_id"], i) for i in range(len(outcome["result"]) // 8)]
        assert len(images) == 2  # ARGS asks for two
        assert result_bytes(images) == bytes(outcome["result"])
        # Every node's part is done when the contract deletes the task.
        wait_for(lambda: task.functions.getTask(run["task_id"]).call()[0] == 0, "the task settled and deleted")
        assert second.wait_until_idle(WAIT)
        after = {address: token.functions.balanceOf(address).call() for address in run["before"]}
        assert run["before"][run["wallet"].address] - after[run["wallet"].address] == 3 * FEE
        assert all(after[a] - run["before"][a] == FEE for a in run["nodes"]), "each node paid one fee"
        assert all(node.functions.getNodeStatus(a).call() == NodeStatus.AVAILABLE for a in run["nodes"])
        assert token.functions.balanceOf(task.address).call() == sum(live_task_balances(task).values()) == 0
        assert all(tasks == {} for tasks in store_records(state).values()), "finished tasks are dropped"
    except BaseException:
        second.close()
        raise
    return second, logs


@pytest.mark.parametrize(
    ("behaviours", "crashes"),
    [
        # Every commitment is on chain, no node has disclosed.
        (["honest+crash:before_disclose"] * 3, 3),
        # Two results agreed (TaskSuccess, uploaded, reported); the third node committed, then died.
        (["honest+crash:after_commit", "honest", "honest"], 1),
        # TaskSuccess: the result node died before uploading the images.
        (["honest+crash:before_upload"] * 3, 1),
        # The images are on the Relay; the result node died before reporting.
        (["honest+crash:before_report"] * 3, 1),
    ],
    ids=["before_disclose", "after_commit", "before_upload", "before_report"],
)
def test_an_interrupted_task_completes_after_a_restart(tmp_path: Path, behaviours: list[str], crashes: int) -> None:
    run = start_task_and_stop_at(tmp_path, behaviours, crashes)
    assert any(tasks for tasks in store_records(tmp_path).values()), "the crashed nodes' tasks are on disk"
    second, logs = finish_after_restart(tmp_path, run)
    second.close()
    assert any(f"resumed by their nodes: {run['task_id']}" in line for line in logs), logs


def test_a_result_node_killed_between_its_upload_and_saving_it_uploads_again_and_reports(tmp_path: Path) -> None:
    run = start_task_and_stop_at(tmp_path, ["honest+crash:before_report"] * 3, 1)
    # Make the store say what a kill right after the upload's answer leaves: disclosed, not uploaded.
    for path in (tmp_path / "nodes").glob("*.json"):
        data = json.loads(path.read_text())
        for record in data["tasks"].values():
            assert record["phase"] == NodeTaskPhase.UPLOADED.value
            record["phase"] = NodeTaskPhase.DISCLOSED.value
        path.write_text(json.dumps(data))
    second, _ = finish_after_restart(tmp_path, run)
    try:
        # The Relay refused the second upload ("Task not success": it has the images); the node went on.
        assert any("report uploaded" == a.what for n in second.all_nodes for a in n.actions)
        assert not any("upload failed" in a.what for n in second.all_nodes for a in n.actions)
    finally:
        second.close()


def test_a_task_whose_result_was_not_saved_is_cancelled_after_its_deadline_with_a_refund(tmp_path: Path) -> None:
    """Only a task a node cannot resume is left to the deadline (here: its store was deleted)."""
    run = start_task_and_stop_at(tmp_path, ["honest+crash:before_disclose"] * 3, 3)
    for path in (tmp_path / "nodes").glob("*.json"):
        path.unlink()
    logs: list[str] = []
    second = sandbox(tmp_path, ["honest"] * 3, logs)
    try:
        assert any(f"cannot be resumed: {run['task_id']}" in line for line in logs), logs
        _, token, node, task = contracts_of(second.info)
        timeout = task.functions.getTask(run["task_id"]).call()[12] - second.chain.now()  # type: ignore[union-attr]
        second.advance(timeout + 1)
        wait_for(lambda: task.functions.getTask(run["task_id"]).call()[0] == 0, "the task cancelled")
        assert token.functions.balanceOf(run["wallet"].address).call() == run["before"][run["wallet"].address]
        assert all(token.functions.balanceOf(a).call() == run["before"][a] for a in run["nodes"]), "nobody paid"
        assert all(node.functions.getNodeStatus(a).call() == NodeStatus.AVAILABLE for a in run["nodes"])
        assert token.functions.balanceOf(task.address).call() == 0
    finally:
        second.close()


class RecordingStore:
    """A node store in memory that notes when each record was saved."""

    def __init__(self, log: list[str]) -> None:
        self.records: dict[int, dict[str, Any]] = {}
        self.log = log

    def load(self) -> dict[int, dict[str, Any]]:
        return dict(self.records)

    def save(self, task_id: int, record: dict[str, Any]) -> None:
        self.records[task_id] = dict(record)
        self.log.append(f"save {record['phase']} result={bool(record['result'])}")

    def drop(self, task_id: int) -> None:
        self.records.pop(task_id, None)
        self.log.append("drop")

    def clear(self) -> None:
        self.records.clear()


def test_the_result_is_on_disk_before_the_commitment_is_sent(hydrogen_network: Network) -> None:
    order: list[str] = []
    for node in hydrogen_network.nodes:
        node.store = RecordingStore(order)
    task = hydrogen_network.contracts.task
    send = task.submit_commitment

    def submit(sender: Any, task_id: int, round_: int, commitment: bytes, nonce: bytes) -> Any:
        order.append("commit sent")
        return send(sender, task_id, round_, commitment, nonce)

    task.submit_commitment = submit  # type: ignore[method-assign]
    hydrogen_network.add_app().submit(dict(ARGS))
    hydrogen_network.settle()
    commits = [i for i, what in enumerate(order) if what == "commit sent"]
    assert len(commits) == 3
    for index in commits:
        assert order[index - 1] == "save assigned result=True", order
    assert order.count("drop") == 3 and all(not cast(RecordingStore, n.store).records for n in hydrogen_network.nodes)


def test_the_node_file_is_replaced_whole_owner_only_and_of_its_deployment(tmp_path: Path) -> None:
    path = tmp_path / "nodes" / "0xabc.json"
    store = NodeTaskFile(path, "0xTask@0x01")
    store.save(7, {"phase": "committed", "result": "ab"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left"
    assert NodeTaskFile(path, "0xTask@0x01").load() == {7: {"phase": "committed", "result": "ab"}}
    # Another deployment (a --reset chain: task ids restart at 1): not this node's tasks.
    assert NodeTaskFile(path, "0xTask@0x02").load() == {}
    store.drop(7)
    assert NodeTaskFile(path, "0xTask@0x01").load() == {}
    path.write_text('{"format": 1, "deployment": "0xTask@0x01", "tasks": {"7": ')
    damaged = NodeTaskFile(path, "0xTask@0x01")
    assert damaged.load() == {} and damaged.damaged is not None and str(path) in damaged.damaged


def test_the_test_fixture_sandbox_keeps_no_node_files(tmp_path: Path) -> None:
    with Sandbox(SandboxOptions.for_tests(tmp_path, ["honest"] * 3), log=lambda _: None) as running:
        wallet = running.new_wallet(cnx=100 * CNX)
        with app_for(running.info, wallet.key, timeout=WAIT) as app:
            assert app.run(ARGS).outcome == "success"
        assert running.wait_until_idle(WAIT)
    assert not (tmp_path / "nodes").exists()
