"""Uploads bounded before decoding, and decoded outside the Relay's lock.

Ten 4096x4096 16-bit PNGs of zeros are 1.3 MB of files but 1.3 GB decoded: they
held the Relay's lock for 46 s while every other request waited. Now such an
upload is refused from its headers, and a valid upload's hashing holds up no one.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from hydrogen_harness.fakes.relay import (
    MAX_UPLOAD_DECODED_BYTES,
    MemoryStorage,
    RelayService,
    RelayValidationError,
    create_app,
    in_process_client,
)
from hydrogen_harness.fakes.relay.images import PngHeader, check_upload_limits
from hydrogen_harness.protocol.phash import phash
from tests.relay.wire import Wire, assert_refused
from tests.relay.world import RelayWorld

WAIT = 30.0  # seconds a handshake may take before the test gives up (never reached when it works)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zeros_png(side: int, colour_type: int = 6, bit_depth: int = 16) -> bytes:
    """A valid PNG of zeros: tiny as a file, as large as you like decoded."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = b"\x00" + bytes((side * channels * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, bit_depth, colour_type, 0, 0, 0)
    palette = _chunk(b"PLTE", b"\x00\x00\x00") if colour_type == 3 else b""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + palette + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


class Hashes:
    """The Relay's image hash, watched: counts calls and can hold them at a gate."""

    def __init__(self, *, gated: bool = False) -> None:
        self.calls = 0
        self.arrived = threading.Semaphore(0)
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.gave_up = False
        self._lock = threading.Lock()

    def __call__(self, image: bytes) -> bytes:
        with self._lock:
            self.calls += 1
        self.arrived.release()
        if not self.gate.wait(WAIT):
            self.gave_up = True  # nobody opened the gate: the test failed
        return phash(image)


@pytest.fixture
def hashes() -> Hashes:
    return Hashes()


@pytest.fixture
def watched(world: RelayWorld, hashes: Hashes) -> Iterator[tuple[Wire, Hashes]]:
    service = RelayService(world.history, MemoryStorage(), clock=world.clock, image_hash=hashes)
    with in_process_client(create_app(service)) as http:
        yield Wire(http, world.clock), hashes


def _upload(wire: Wire, world: RelayWorld, images: list[bytes]) -> httpx.Response:
    task = world.succeeded
    return wire.upload(task.result_node, task.task_id, images)


def test_the_upload_that_stalled_the_relay_is_refused_before_decoding(watched: tuple[Wire, Hashes], world: RelayWorld) -> None:
    wire, hashes = watched
    image = zeros_png(4096)
    assert len(image) < 200_000
    response = _upload(wire, world, [image] * 10)
    decoded = 10 * 4096 * 4096 * 8
    assert_refused(
        response,
        "images",
        f"Images would decode to {decoded} bytes in all (the largest is 4096x4096 16-bit RGBA), "
        f"more than the {MAX_UPLOAD_DECODED_BYTES} allowed per upload",
        prefix=True,
    )
    assert hashes.calls == 0  # not one image was decoded


def test_one_image_over_the_whole_budget(watched: tuple[Wire, Hashes], world: RelayWorld) -> None:
    wire, hashes = watched
    response = _upload(wire, world, [zeros_png(4096, colour_type=2)])
    assert_refused(response, "images", f"Images would decode to {4096 * 4096 * 8} bytes in all", prefix=True)
    assert hashes.calls == 0


def test_the_largest_real_upload_fits_the_budget() -> None:
    # Ten images at the network's largest size, even at 16 bits per channel with alpha.
    headers = check_upload_limits([zeros_png(1024)] * 10)
    assert sum(header.decoded_bytes for header in headers) == MAX_UPLOAD_DECODED_BYTES
    with pytest.raises(RelayValidationError, match="Images would decode to"):
        check_upload_limits([zeros_png(1024)] * 9 + [zeros_png(1032)])


@pytest.mark.parametrize(
    ("colour_type", "bit_depth", "per_pixel"),
    [(0, 1, 1), (0, 8, 1), (0, 16, 2), (2, 8, 4), (2, 16, 8), (3, 4, 1), (4, 8, 4), (4, 16, 8), (6, 8, 4), (6, 16, 8)],
)
def test_decoded_size_is_what_gos_decoder_allocates(colour_type: int, bit_depth: int, per_pixel: int) -> None:
    assert PngHeader(10, 3, bit_depth, colour_type).decoded_bytes == 30 * per_pixel


@pytest.mark.parametrize(
    ("colour_type", "bit_depth", "message"),
    [
        (2, 4, "Image 0 is not a valid PNG image (4 bits per sample; a RGB PNG has 8, 16)"),
        (3, 16, "Image 0 is not a valid PNG image (16 bits per sample; a palette PNG has 1, 2, 4, 8)"),
        (5, 8, "Image 0 is not a valid PNG image (colour type 5 does not exist)"),
    ],
)
def test_bit_depths_the_colour_type_does_not_allow(watched: tuple[Wire, Hashes], world: RelayWorld, colour_type: int, bit_depth: int, message: str) -> None:
    wire, hashes = watched
    header = struct.pack(">IIBBBBB", 8, 8, bit_depth, colour_type, 0, 0, 0)
    image = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")
    assert_refused(_upload(wire, world, [image]), "images", message)
    assert hashes.calls == 0


def _in_thread(action: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(action()), daemon=True)
    thread.start()
    return thread, answers


def test_other_requests_are_served_while_an_upload_decodes(world: RelayWorld) -> None:
    hashes = Hashes(gated=True)
    service = RelayService(world.history, MemoryStorage(), clock=world.clock, image_hash=hashes)
    task = world.succeeded
    with in_process_client(create_app(service)) as http:
        wire = Wire(http, world.clock)
        assert wire.post_args(world.creator, task.task_id, task.args).status_code == 200
        upload, answers = _in_thread(lambda: wire.upload(task.result_node, task.task_id, task.images))
        assert hashes.arrived.acquire(timeout=WAIT), "the upload never reached its first image"
        # The upload is now inside its decoding, held at the gate: the Relay still answers.
        response = wire.get_task(task.nodes[1], task.task_id)
        assert not hashes.gave_up, "the request waited for the upload's decoding"
        assert response.status_code == 200 and response.json()["data"]["status"] == 3
        hashes.gate.set()
        upload.join(WAIT)
        assert answers and answers[0].status_code == 200, answers
        assert wire.get_task(task.nodes[1], task.task_id).json()["data"]["status"] == 4


def test_two_uploads_at_once_store_one(world: RelayWorld) -> None:
    # Both decode side by side; the second to finish finds the task already uploaded.
    hashes = Hashes(gated=True)
    service = RelayService(world.history, MemoryStorage(), clock=world.clock, image_hash=hashes)
    task = world.succeeded
    with in_process_client(create_app(service)) as http:
        wire = Wire(http, world.clock)
        first = _in_thread(lambda: wire.upload(task.result_node, task.task_id, task.images))
        second = _in_thread(lambda: wire.upload(task.result_node, task.task_id, task.images))
        assert hashes.arrived.acquire(timeout=WAIT) and hashes.arrived.acquire(timeout=WAIT)
        hashes.gate.set()
        for thread, _ in (first, second):
            thread.join(WAIT)
        answers = sorted((first[1] + second[1]), key=lambda response: response.status_code)
        assert [response.status_code for response in answers] == [200, 400]
        assert_refused(answers[1], "task_id", "Task not success")
        assert not hashes.gave_up
        assert [wire.get_result(world.creator, task.task_id, str(i)).content for i in range(3)] == list(task.images)
