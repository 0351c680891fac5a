"""POST /v1/inference_tasks: each check of PROTOCOL.md 4, in order.

Every request that fails check N passes checks 1..N-1, and where possible also
fails a later check, to show which comes first.
"""

from __future__ import annotations

import json

from hydrogen_harness.client.relay import RelayTaskStatus
from hydrogen_harness.protocol.signing import sign_request
from tests.relay.wire import Wire, assert_refused, malformed
from tests.relay.world import RelayWorld, task_args_json

INVALID_ARGS = json.dumps({"base_model": "m", "task_config": {}})  # no prompt


def test_1_invalid_signature_before_the_args(wire: Wire, world: RelayWorld) -> None:
    params = {"task_args": INVALID_ARGS, "task_id": 999}  # invalid args, unknown task
    signature = malformed(sign_request(params, world.clock(), world.creator), "truncated")
    response = wire.post_args(world.creator, 999, INVALID_ARGS, signature=signature)
    assert_refused(response, "signature", "Invalid signature")


def test_a_signature_over_other_params_recovers_a_stranger(wire: Wire, world: RelayWorld) -> None:
    task = world.created
    other = {"task_args": task.args, "task_id": task.task_id + 1}
    response = wire.post_args(world.creator, task.task_id, task.args, signed_params=other)
    assert_refused(response, "signature", "Signer not allowed")


def test_2_invalid_args_before_the_task_lookup(wire: Wire, world: RelayWorld) -> None:
    response = wire.post_args(world.creator, 999, INVALID_ARGS)
    assert_refused(response, "task_args", "prompt: field required")


def test_2_args_that_are_not_json(wire: Wire, world: RelayWorld) -> None:
    response = wire.post_args(world.creator, world.created.task_id, "{not json")
    assert_refused(response, "task_args", "not valid JSON", prefix=True)


def test_3_task_not_found_on_the_blockchain(wire: Wire, world: RelayWorld) -> None:
    response = wire.post_args(world.stranger, 999, task_args_json("x", 1))
    assert_refused(response, "task_id", "Task not found on the Blockchain")


def test_4_signer_not_allowed_before_the_hash_check(wire: Wire, world: RelayWorld) -> None:
    task = world.created
    response = wire.post_args(task.nodes[0], task.task_id, task_args_json("other args", 1))
    assert_refused(response, "signature", "Signer not allowed")


def test_5_task_already_uploaded_before_the_hash_check(wire: Wire, world: RelayWorld) -> None:
    task = world.created
    assert wire.post_args(world.creator, task.task_id, task.args).status_code == 200
    response = wire.post_args(world.creator, task.task_id, task_args_json("other args", 1))
    assert_refused(response, "task_id", "Task already uploaded")


def test_6_task_hash_mismatch(wire: Wire, world: RelayWorld) -> None:
    task = world.created
    # The same arguments, serialised differently: a different keccak256.
    reformatted = json.dumps(json.loads(task.args), indent=1)
    response = wire.post_args(world.creator, task.task_id, reformatted)
    assert_refused(response, "task_hash", "Task hash mismatch")


def test_success_answers_the_task_without_selected_nodes(wire: Wire, world: RelayWorld) -> None:
    task = world.created
    response = wire.post_args(world.creator, task.task_id, task.args)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "success"
    data = body["data"]
    assert data["task_args"] == task.args
    assert data["task_id"] == task.task_id
    assert data["creator"] == world.creator.address
    assert data["status"] == RelayTaskStatus.ARGS_UPLOADED
    assert data["SelectedNodes"] is None
    assert data["DeletedAt"] is None


def test_args_of_an_aborted_task_keep_its_status(wire: Wire, world: RelayWorld) -> None:
    task = world.aborted
    response = wire.post_args(world.creator, task.task_id, task.args)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == RelayTaskStatus.ABORTED


def test_a_refused_upload_changes_nothing(wire: Wire, world: RelayWorld) -> None:
    task = world.created
    assert_refused(wire.post_args(world.creator, task.task_id, task.args + " "), "task_hash", "Task hash mismatch")
    response = wire.post_args(world.creator, task.task_id, task.args)
    assert response.status_code == 200, response.text
