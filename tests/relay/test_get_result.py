"""GET /v1/inference_tasks/{task_id}/results/{image_num}: each check in order, and
what happens to results after a late TaskAborted."""

from __future__ import annotations

import pytest

from hydrogen_harness.fakes.relay import RelayService
from hydrogen_harness.client.relay import RelayTaskStatus
from hydrogen_harness.protocol.signing import sign_request
from tests.relay.wire import Wire, assert_refused, malformed
from tests.relay.world import RelayWorld


@pytest.fixture
def uploaded(wire: Wire, world: RelayWorld) -> Wire:
    """The successful task with its images on the Relay."""
    task = world.succeeded
    assert wire.upload(task.result_node, task.task_id, task.images).status_code == 200
    return wire


def test_1_invalid_signature(uploaded: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    signature = malformed(sign_request({"image_num": "9", "task_id": 999}, world.clock(), world.creator), "v is 27")
    response = uploaded.get_result(world.creator, 999, "9", signature=signature)  # unknown task too
    assert_refused(response, "signature", "Invalid signature")


def test_image_num_is_signed_as_a_string(uploaded: Wire, world: RelayWorld) -> None:
    # Signed as a number, the signature recovers to another address.
    task = world.succeeded
    response = uploaded.get_result(world.creator, task.task_id, "0", signed_params={"image_num": 0, "task_id": task.task_id})
    assert_refused(response, "signature", "Signer not allowed")


def test_2_task_not_found(uploaded: Wire, world: RelayWorld) -> None:
    assert_refused(uploaded.get_result(world.stranger, 999, "0"), "task_id", "Task not found")


def test_3_signer_not_allowed_before_the_status_check(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded  # results not uploaded either
    assert_refused(wire.get_result(task.nodes[0], task.task_id, "0"), "signature", "Signer not allowed")


def test_4_results_not_uploaded(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    assert_refused(wire.get_result(world.creator, task.task_id, "0"), "task_id", "Task results not uploaded")


@pytest.mark.parametrize(
    "image_num",
    [
        "3", "-1", "99999999999999999999999999", "abc", "01", "+1", "0x1", " 1", "1.0", "", "../0", "0/../1", "a/b", "1/",
        "9" * 10_000,  # past int()'s 4,300-digit limit: was a 500 with a traceback
    ],
    ids=lambda value: value if len(value) < 30 else f"{len(value)} digits",
)
def test_5_file_not_found(uploaded: Wire, world: RelayWorld, image_num: str) -> None:
    # Whatever reaches the Relay as image_num (the client signs that string) is no
    # index of an uploaded image: 400 File not found, never a 404 or a 500.
    # Dots and slashes go percent-encoded, or httpx would resolve "../" itself.
    task = world.succeeded
    in_url = image_num.replace(".", "%2E").replace("/", "%2F")
    signed = {"image_num": image_num, "task_id": task.task_id}
    response = uploaded.get_result(world.creator, task.task_id, in_url, signed_params=signed)
    assert_refused(response, "image_num", "File not found")


def test_a_path_as_image_num(uploaded: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    signed = {"image_num": "0/1", "task_id": task.task_id}
    response = uploaded.get_result(world.creator, task.task_id, "0/1", signed_params=signed)
    assert_refused(response, "image_num", "File not found")


def test_success_returns_each_png(uploaded: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    for index, image in enumerate(task.images):
        response = uploaded.get_result(world.creator, task.task_id, str(index))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.content == image


def test_results_stay_downloadable_after_a_late_abort(chain_isolated: RelayWorld, uploaded: Wire, relay: RelayService) -> None:
    # Documented deviation: the real Relay sets status 2 on a late TaskAborted.
    world = chain_isolated
    task = world.succeeded
    world.chain.advance(world.deployment.task.timeout() + 1)
    world.clock.now = world.chain.now()
    world.deployment.task.cancel(world.creator, task.task_id)
    response = uploaded.get_result(world.creator, task.task_id, "1")
    assert response.status_code == 200, response.text
    assert response.content == task.images[1]
    record = relay.task(task.task_id)
    assert record is not None and record.status is RelayTaskStatus.RESULTS_UPLOADED


def test_an_abort_before_the_upload_refuses_it(chain_isolated: RelayWorld, wire: Wire) -> None:
    world = chain_isolated
    task = world.succeeded
    world.chain.advance(world.deployment.task.timeout() + 1)
    world.clock.now = world.chain.now()
    world.deployment.task.cancel(world.creator, task.task_id)
    assert_refused(wire.upload(task.result_node, task.task_id, task.images), "task_id", "Task not success")
    assert_refused(wire.get_result(world.creator, task.task_id, "0"), "task_id", "Task results not uploaded")
