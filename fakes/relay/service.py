"""The fake Relay's four operations, in plain Python (no HTTP).

Each operation runs the checks of PROTOCOL.md section 4 in the protocol's order
with its messages, raising `RelayValidationError` (HTTP 400) at the first that
fails; the HTTP app only decodes requests and renders answers. Before answering,
the service catches up with the chain head (see `follower.py`).

Signatures are checked over the parameters the real Relay serialises for each
endpoint: `{task_args, task_id}`, `{task_id}`, `{task_id}`, `{image_num, task_id}`,
with `task_id` a number and `image_num` a string, followed by the timestamp. A
timestamp more than 60 s from the service clock, either way, is an invalid
signature, as in the real Relay.

Where PROTOCOL.md is silent:
- Uploading args moves status 0 to 1 only; a task already aborted or successful
  keeps its status (the real Relay overwrites it with 1).
- Args that fail validation are refused whatever else is wrong with the request,
  before the task is looked up, as the protocol's order says.
- `image_num` must be a plain decimal index (no sign, no leading zeros) of an
  uploaded image; anything else is "File not found", as a missing file is.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from hydrogen_harness.protocol.phash import phash
from hydrogen_harness.client.relay import RelayField, RelayMessage, RelayTaskStatus
from hydrogen_harness.protocol.signing import SignatureError, recover_signer
from hydrogen_harness.protocol.task_args import TaskArgsError, parse_task_args, task_hash

from hydrogen_harness.chain.event_feed import ChainSource
from hydrogen_harness.fakes.relay.errors import RelayValidationError
from hydrogen_harness.fakes.relay.follower import ChainFollower, Rollback
from hydrogen_harness.fakes.relay.images import check_result_images
from hydrogen_harness.fakes.relay.json_limits import too_deep
from hydrogen_harness.fakes.relay.records import TaskRecord
from hydrogen_harness.fakes.relay.storage import Storage

__all__ = ["SIGNATURE_WINDOW", "RelayService"]

SIGNATURE_WINDOW = 60
"""Seconds a request's timestamp may differ from the Relay's clock, either way."""

DECODE_SLOTS = 2
"""Uploads whose images are decoded at the same time; later ones wait their turn
(each takes up to a few hundred MB while it decodes, see images.py)."""

_IMAGE_NUM = re.compile(r"0|[1-9][0-9]*")
_MAX_IMAGE_NUM_DIGITS = 20  # a uint64, far more than any task's images


def _fail(field: RelayField, message: RelayMessage | str) -> RelayValidationError:
    return RelayValidationError(field, message)


class RelayService:
    """The Relay's task endpoints over a chain source and a storage.

    `clock` gives the Relay's time in Unix seconds (signature windows, record
    times). `lock`, if given, is held around every read of the chain and of the
    clock: the sandbox serves requests from a thread while others drive the chain
    (so `clock` must not take that lock itself). `start_block` is where a Relay
    with an empty storage starts reading events. `image_hash` is the perceptual
    hash uploads are checked with (tests slow it down or count its calls).
    """

    def __init__(
        self,
        source: ChainSource,
        storage: Storage,
        clock: Callable[[], int],
        *,
        lock: AbstractContextManager[Any] | None = None,
        start_block: int = 0,
        image_hash: Callable[[bytes], bytes] = phash,
    ) -> None:
        self.source = source
        self.storage = storage
        self._clock = clock
        self._chain_lock = lock if lock is not None else nullcontext()
        self.follower = ChainFollower(source, storage, clock, lock=self._chain_lock, start_block=start_block)
        # One request at a time: each reads then writes the storage.
        self._mutex = threading.RLock()
        self._image_hash = image_hash
        # Uploads hash their images outside `_mutex`; this bounds how many do at once
        # (so the memory they take), without holding up any other request.
        self._decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)

    # ------------------------------------------------------------ the four operations

    def upload_task_args(self, task_id: int, task_args: str, timestamp: int, signature: str) -> TaskRecord:
        """`POST /v1/inference_tasks`: store the args of a task, from its creator."""
        with self._mutex:
            self.follower.catch_up()
            signer = self._signer({"task_args": task_args, "task_id": task_id}, timestamp, signature)
            args_hash = self._checked_args_hash(task_args)
            task = self.storage.get_task(task_id)
            if task is None:
                raise _fail(RelayField.TASK_ID, RelayMessage.TASK_NOT_ON_CHAIN)
            if signer != task.creator:
                raise _fail(RelayField.SIGNATURE, RelayMessage.SIGNER_NOT_ALLOWED)
            if task.task_args:
                raise _fail(RelayField.TASK_ID, RelayMessage.TASK_ALREADY_UPLOADED)
            if args_hash != task.task_hash:
                raise _fail(RelayField.TASK_HASH, RelayMessage.TASK_HASH_MISMATCH)
            status = RelayTaskStatus.ARGS_UPLOADED if task.status is RelayTaskStatus.CREATED else task.status
            updated = dataclasses.replace(task, task_args=task_args, status=status, updated_at=self._now())
            self.storage.put_task(updated)
            return updated

    def get_task(self, task_id: int, timestamp: int, signature: str) -> TaskRecord:
        """`GET /v1/inference_tasks/{task_id}`: the task, for its creator or a selected node."""
        with self._mutex:
            self.follower.catch_up()
            signer = self._signer({"task_id": task_id}, timestamp, signature)
            task = self._task(task_id)
            if not task.task_args:
                raise _fail(RelayField.TASK_ID, RelayMessage.TASK_NOT_READY)
            if signer != task.creator and not task.is_selected(signer):
                raise _fail(RelayField.SIGNATURE, RelayMessage.SIGNER_NOT_ALLOWED)
            return task

    def upload_results(self, task_id: int, images: Sequence[bytes], timestamp: int, signature: str) -> None:
        """`POST /v1/inference_tasks/{task_id}/results`: the result node's images."""
        with self._mutex:
            self.follower.catch_up()
            signer = self._signer({"task_id": task_id}, timestamp, signature)
            expected = self._awaited_result(task_id, signer)
        # Decoding and hashing are the slow part (up to about a second within the
        # limits of images.py): outside the lock, so other requests go on meanwhile.
        with self._decode_slots:
            check_result_images(images, expected, self._image_hash)
        with self._mutex:
            # The task may have moved on while the images were hashed (a concurrent
            # upload, an abort): the same checks again, on what is stored now.
            if self._awaited_result(task_id, signer) != expected:
                raise _fail(RelayField.IMAGES, RelayMessage.WRONG_IMAGES)
            task = self._task(task_id)
            updated = dataclasses.replace(
                task, status=RelayTaskStatus.RESULTS_UPLOADED, image_count=len(images), updated_at=self._now()
            )
            with self.storage.transaction():
                self.storage.put_images(task_id, images)
                self.storage.put_task(updated)

    def get_result(self, task_id: int, image_num: str, timestamp: int, signature: str) -> bytes:
        """`GET /v1/inference_tasks/{task_id}/results/{image_num}`: one PNG, for the creator."""
        with self._mutex:
            self.follower.catch_up()
            signer = self._signer({"image_num": image_num, "task_id": task_id}, timestamp, signature)
            task = self._task(task_id)
            if signer != task.creator:
                raise _fail(RelayField.SIGNATURE, RelayMessage.SIGNER_NOT_ALLOWED)
            if task.status is not RelayTaskStatus.RESULTS_UPLOADED:
                raise _fail(RelayField.TASK_ID, RelayMessage.RESULTS_NOT_UPLOADED)
            image = None
            # Length before int(): int() refuses more than 4,300 digits with a ValueError,
            # and no task has more than a handful of images.
            if _IMAGE_NUM.fullmatch(image_num) and len(image_num) <= _MAX_IMAGE_NUM_DIGITS and int(image_num) < task.image_count:
                image = self.storage.get_image(task_id, int(image_num))
            if image is None:
                raise _fail(RelayField.IMAGE_NUM, RelayMessage.FILE_NOT_FOUND)
            return image

    # ------------------------------------------------------------ other entry points

    def catch_up(self) -> int:
        """Read the chain up to its head now; returns the number of events applied."""
        with self._mutex:
            return self.follower.catch_up()

    def task(self, task_id: int) -> TaskRecord | None:
        """The stored record of a task, unsigned (for tests and the sandbox's views)."""
        with self._mutex:
            return self.storage.get_task(task_id)

    def resume(self) -> Rollback | None:
        """After a restart on a kept storage: undo what came from blocks the chain no
        longer has, if any (see `ChainFollower.resume`); returns what was undone."""
        with self._mutex:
            return self.follower.resume()

    def reset(self) -> None:
        """Forget every task, image and the cursor (e.g. after the chain was reverted)."""
        with self._mutex:
            self.storage.reset()

    # ------------------------------------------------------------ checks

    def _now(self) -> int:
        with self._chain_lock:
            return int(self._clock())

    def _signer(self, params: Mapping[str, Any], timestamp: int, signature: str) -> str:
        """The checksummed signer, or "Invalid signature" (also for a stale timestamp)."""
        if abs(self._now() - timestamp) > SIGNATURE_WINDOW:
            raise _fail(RelayField.SIGNATURE, RelayMessage.INVALID_SIGNATURE)
        try:
            return recover_signer(params, timestamp, signature)
        except (SignatureError, TypeError, ValueError):
            raise _fail(RelayField.SIGNATURE, RelayMessage.INVALID_SIGNATURE) from None

    @staticmethod
    def _checked_args_hash(task_args: str) -> bytes:
        """keccak256 of valid args, or a 400 on field task_args saying what is wrong."""
        # Measured before json.loads sees it: deep nesting crashes the C parser.
        refusal = too_deep(task_args.encode("utf-8", "surrogatepass"))
        if refusal is not None:
            raise _fail(RelayField.TASK_ARGS, f"not valid JSON: {refusal}")
        try:
            parse_task_args(task_args)
            return task_hash(task_args)
        except TaskArgsError as exc:
            where = "" if exc.field == RelayField.TASK_ARGS else f"{exc.field}: "
            raise _fail(RelayField.TASK_ARGS, f"{where}{exc.message}") from None

    def _awaited_result(self, task_id: int, signer: str) -> bytes:
        """The result `signer` may upload images for: checks 2-5 of the upload."""
        task = self._task(task_id)
        if task.status is not RelayTaskStatus.PENDING_RESULTS:
            raise _fail(RelayField.TASK_ID, RelayMessage.TASK_NOT_SUCCESS)
        result_node = task.result_node
        if result_node is None:
            raise _fail(RelayField.TASK_ID, RelayMessage.TASK_NOT_READY)
        if signer != result_node.address:
            raise _fail(RelayField.SIGNATURE, RelayMessage.SIGNER_NOT_ALLOWED)
        return result_node.result

    def _task(self, task_id: int) -> TaskRecord:
        task = self.storage.get_task(task_id)
        if task is None:
            raise _fail(RelayField.TASK_ID, RelayMessage.TASK_NOT_FOUND)
        return task
