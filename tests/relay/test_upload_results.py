"""POST /v1/inference_tasks/{task_id}/results: each check in order, then the images."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from hydrogen_harness.fakes.relay import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGES,
    MAX_UPLOAD_BYTES,
    MemoryStorage,
    RelayService,
    TaskRecord,
    create_app,
    in_process_client,
)
from hydrogen_harness.protocol.events import TaskEvent
from hydrogen_harness.client.relay import RelayTaskStatus
from hydrogen_harness.protocol.signing import sign_request
from tests.relay.wire import Wire, assert_refused, malformed
from tests.relay.world import RelayWorld, gradient_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_1_invalid_signature(wire: Wire, world: RelayWorld) -> None:
    signature = malformed(sign_request({"task_id": 999}, world.clock(), world.stranger), "zero r")
    response = wire.upload(world.stranger, 999, [b"not even a png"], signature=signature)
    assert_refused(response, "signature", "Invalid signature")


def test_2_task_not_found(wire: Wire, world: RelayWorld) -> None:
    assert_refused(wire.upload(world.stranger, 999, [gradient_png(1)]), "task_id", "Task not found")


def test_3_task_not_success_before_the_signer_check(wire: Wire, world: RelayWorld) -> None:
    assert_refused(wire.upload(world.stranger, world.created.task_id, [gradient_png(1)]), "task_id", "Task not success")


def test_3_an_aborted_task_is_not_success(wire: Wire, world: RelayWorld) -> None:
    task = world.aborted
    assert_refused(wire.upload(task.nodes[0], task.task_id, [gradient_png(1)]), "task_id", "Task not success")


def test_3_a_second_upload_is_not_success(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    assert wire.upload(task.result_node, task.task_id, task.images).status_code == 200
    assert_refused(wire.upload(task.result_node, task.task_id, task.images), "task_id", "Task not success")


class _NoChain:
    """A chain with no blocks to read: the test writes the Relay's storage itself."""

    def head(self) -> int:
        return 0

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        return []

    def block_hash(self, number: int) -> bytes | None:
        return None


def test_4_task_not_ready_without_a_result_node(world: RelayWorld) -> None:
    # The real Relay can hold a successful task without a result node (its event
    # handlers run separately); ours records both at once, so build that row by hand.
    storage = MemoryStorage()
    storage.set_block_cursor(1)
    now = world.clock()
    storage.put_task(
        TaskRecord(
            row_id=1,
            task_id=5,
            creator=world.creator.address,
            task_hash=b"\x01" * 32,
            data_hash=b"\x00" * 32,
            status=RelayTaskStatus.PENDING_RESULTS,
            created_at=now,
            updated_at=now,
            task_args="{}",
        )
    )
    with in_process_client(create_app(RelayService(_NoChain(), storage, clock=world.clock))) as http:
        response = Wire(http, world.clock).upload(world.stranger, 5, [gradient_png(1)])
    assert_refused(response, "task_id", "Task not ready")


def test_5_signer_not_allowed(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    other_selected = next(node for node in task.nodes if node is not task.result_node)
    assert_refused(wire.upload(other_selected, task.task_id, task.images), "signature", "Signer not allowed")


def test_6_images_in_the_wrong_order(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    swapped = [task.images[1], task.images[0], *task.images[2:]]
    assert_refused(wire.upload(task.result_node, task.task_id, swapped), "images", "Wrong images uploaded")


def test_6_one_image_missing(wire: Wire, world: RelayWorld) -> None:
    task = world.succeeded
    assert_refused(wire.upload(task.result_node, task.task_id, task.images[:-1]), "images", "Wrong images uploaded")


def test_success_and_the_status_moves_to_uploaded(wire: Wire, world: RelayWorld, relay: RelayService) -> None:
    task = world.succeeded
    response = wire.upload(task.result_node, task.task_id, task.images)
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "success"}
    record = relay.task(task.task_id)
    assert record is not None and record.status is RelayTaskStatus.RESULTS_UPLOADED


# ---------------------------------------------------------------- the images themselves


def _upload(wire: Wire, world: RelayWorld, images: list[bytes]):  # type: ignore[no-untyped-def]
    task = world.succeeded
    return wire.upload(task.result_node, task.task_id, images)


def test_a_non_png_image(wire: Wire, world: RelayWorld) -> None:
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(world.succeeded.images[0])).save(jpeg, format="JPEG")
    images = [jpeg.getvalue(), *world.succeeded.images[1:]]
    assert_refused(_upload(wire, world, images), "images", "Image 0 is not a PNG image", prefix=True)


def test_a_truncated_png(wire: Wire, world: RelayWorld) -> None:
    images = [*world.succeeded.images[:2], world.succeeded.images[2][:60]]
    assert_refused(_upload(wire, world, images), "images", "Image 2 cannot be decoded", prefix=True)


def test_a_png_too_large_to_decode(wire: Wire, world: RelayWorld) -> None:
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    header = PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", side, side) + b"\x08\x02\x00\x00\x00"
    response = _upload(wire, world, [header + b"\x00" * 16])
    assert_refused(response, "images", f"Image 0 is {side}x{side} pixels", prefix=True)


def test_too_many_images(wire: Wire, world: RelayWorld) -> None:
    response = _upload(wire, world, [world.succeeded.images[0]] * (MAX_IMAGES + 1))
    assert_refused(response, "images", f"Too many images: {MAX_IMAGES + 1} uploaded, at most {MAX_IMAGES}")


def test_an_image_too_big(wire: Wire, world: RelayWorld) -> None:
    big = PNG_SIGNATURE + b"\x00" * (MAX_IMAGE_BYTES + 1 - len(PNG_SIGNATURE))
    response = _upload(wire, world, [big])
    assert_refused(response, "images", f"Image 0 is {MAX_IMAGE_BYTES + 1} bytes, more than the {MAX_IMAGE_BYTES} allowed")


def test_a_request_too_big(wire: Wire, world: RelayWorld) -> None:
    chunk = b"\x00" * (MAX_UPLOAD_BYTES // 4)
    response = _upload(wire, world, [chunk] * 5)
    assert_refused(response, "body", f"Request too large: at most {MAX_UPLOAD_BYTES} bytes")


def test_a_streamed_request_too_big(wire: Wire, world: RelayWorld) -> None:
    # No Content-Length: the limit is found while the body streams in.
    boundary = b"xyz"
    head = b"--xyz\r\nContent-Disposition: form-data; name=\"images\"; filename=\"0.png\"\r\n\r\n"

    def body():  # type: ignore[no-untyped-def]
        yield head
        for _ in range(5):
            yield b"\x00" * (MAX_UPLOAD_BYTES // 4)

    response = wire.http.post(
        f"/v1/inference_tasks/{world.succeeded.task_id}/results",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=" + boundary.decode()},
    )
    assert "content-length" not in response.request.headers
    assert_refused(response, "body", f"Request too large: at most {MAX_UPLOAD_BYTES} bytes")


def test_an_empty_upload(wire: Wire, world: RelayWorld) -> None:
    assert_refused(_upload(wire, world, []), "images", "No images uploaded", prefix=True)


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"signature": "0x00"}, "timestamp", "Field required"),
        ({"timestamp": "1"}, "signature", "Field required"),
        ({"timestamp": "soon", "signature": "0x00"}, "timestamp", "must be a decimal integer (int64)"),
        ({"timestamp": str(2**63), "signature": "0x00"}, "timestamp", "must be a decimal integer (int64)"),
        # past int()'s 4,300-digit limit: was a 500 with a traceback
        ({"timestamp": "1" * 5_000, "signature": "0x00"}, "timestamp", "must be a decimal integer (int64)"),
        ({"timestamp": "-" + "1" * 5_000, "signature": "0x00"}, "timestamp", "must be a decimal integer (int64)"),
    ],
    ids=["no timestamp", "no signature", "a word", "2**63", "5000 digits", "-5000 digits"],
)
def test_malformed_form_fields(wire: Wire, world: RelayWorld, form: dict[str, str], field: str, message: str) -> None:
    files = [("images", ("0.png", world.succeeded.images[0], "image/png"))]
    response = wire.http.post(f"/v1/inference_tasks/{world.succeeded.task_id}/results", data=form, files=files)
    assert_refused(response, field, message)


def test_a_timestamp_with_leading_zeros_is_still_a_timestamp(wire: Wire, world: RelayWorld) -> None:
    # Go's strconv accepts leading zeros; only significant digits count towards int64.
    task = world.succeeded
    signature = sign_request({"task_id": task.task_id}, world.clock(), task.result_node)
    form = {"timestamp": "0" * 30 + str(world.clock()), "signature": signature}
    files = [("images", (f"{i}.png", image, "image/png")) for i, image in enumerate(task.images)]
    response = wire.http.post(f"/v1/inference_tasks/{task.task_id}/results", data=form, files=files)
    assert response.status_code == 200, response.text


def test_images_sent_as_text_fields(wire: Wire, world: RelayWorld) -> None:
    form = {"timestamp": str(world.clock()), "signature": "0x00", "images": "not a file"}
    response = wire.http.post(f"/v1/inference_tasks/{world.succeeded.task_id}/results", data=form)
    assert_refused(response, "images", "images must be uploaded as files")


def test_a_broken_multipart_body(wire: Wire, world: RelayWorld) -> None:
    response = wire.http.post(
        f"/v1/inference_tasks/{world.succeeded.task_id}/results",
        content=b"--x\r\nContent-Disposition: form-data; name=\"timestamp\"\r\n\r\n1\r\n--x\r\n" + b"\x00" * 64,
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "validation_error"
