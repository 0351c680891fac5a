"""GET /v1/inference_tasks/{task_id}: each check in order, and the TASK shape."""

from __future__ import annotations

from hydrogen_harness.client.relay import RelayTaskStatus
from hydrogen_harness.protocol.signing import sign_request
from tests.relay.wire import Wire, assert_refused, malformed
from tests.relay.world import RelayWorld


def test_1_invalid_signature(wire: Wire, world: RelayWorld) -> None:
    signature = malformed(sign_request({"task_id": 999}, world.clock(), world.creator), "high s")
    response = wire.get_task(world.creator, 999, signature=signature)  # unknown task too
    assert_refused(response, "signature", "Invalid signature")


def test_2_task_not_found(wire: Wire, world: RelayWorld) -> None:
    assert_refused(wire.get_task(world.stranger, 999), "task_id", "Task not found")


def test_3_task_not_ready_before_the_signer_check(wire: Wire, world: RelayWorld) -> None:
    # Args not uploaded yet; a stranger asks, and still hears "not ready" first.
    assert_refused(wire.get_task(world.stranger, world.created.task_id), "task_id", "Task not ready")


def test_4_signer_not_allowed(wire: Wire, world: RelayWorld) -> None:
    task = world.created
    assert wire.post_args(world.creator, task.task_id, task.args).status_code == 200
    assert_refused(wire.get_task(world.stranger, task.task_id), "signature", "Signer not allowed")


def test_the_task_record_mirrors_the_real_relays_row(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    assert wire.post_args(world.creator, task.task_id, task.args).status_code == 200
    response = wire.get_task(task.nodes[1], task.task_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "success"
    data = body["data"]
    assert set(data) == {
        "ID", "CreatedAt", "UpdatedAt", "DeletedAt", "task_args", "task_id", "creator",
        "task_hash", "data_hash", "status", "SelectedNodes",
    }  # fmt: skip
    assert data["status"] == RelayTaskStatus.PENDING_RESULTS
    assert data["task_hash"].startswith("0x") and len(data["task_hash"]) == 66
    assert data["data_hash"] == "0x" + "00" * 32
    assert data["DeletedAt"] is None
    assert data["CreatedAt"].endswith("Z") and data["CreatedAt"][10] == "T"
    nodes = data["SelectedNodes"]
    assert [node["NodeAddress"] for node in nodes] == [node.address for node in task.nodes]
    for node in nodes:
        assert set(node) == {
            "ID", "CreatedAt", "UpdatedAt", "DeletedAt", "InferenceTaskID", "NodeAddress", "Result", "IsResultSelected",
        }  # fmt: skip
        assert node["InferenceTaskID"] == data["ID"]
        assert node["DeletedAt"] is None
    assert task.result_node is not None
    result_nodes = [node for node in nodes if node["IsResultSelected"]]
    assert [node["NodeAddress"] for node in result_nodes] == [task.result_node.address]
    assert result_nodes[0]["Result"] == "0x" + task.result.hex()
    assert all(node["Result"] == "" for node in nodes if not node["IsResultSelected"])
