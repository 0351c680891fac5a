"""A typed client of the Relay HTTP API (PROTOCOL.md section 4).

The wire format is the real H-net Relay's, so this client works unchanged against
the real service and against the fake in `hydrogen_harness.fakes.relay`. Every request is signed
with the caller's wallet and a fresh timestamp from `clock` (a retry signs again,
so a slow retry never carries a stale timestamp).

Failures are `RelayError`s carrying the HTTP status, the Relay's message and the
field it named. `RelayNotReady` marks the answers that mean "not yet" (the Relay
has not caught up with the chain, or the other party has not uploaded yet):
callers tell them apart from real rejections, and `RetryPolicy.retry_transient`
decides whether the client itself waits them out.

This module also holds the wire vocabulary shared with the fake Relay: the task
statuses, the messages and the TASK record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import urlencode

import httpx
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.protocol.signing import sign_request

__all__ = [
    "NO_RETRY",
    "TRANSIENT_MESSAGES",
    "RelayAlreadyDone",
    "RelayError",
    "RelayField",
    "RelayMessage",
    "RelayNotReady",
    "RelayProtocolError",
    "RelaySelectedNode",
    "RelayTask",
    "RelayTaskStatus",
    "RelayUnavailable",
    "RelayClient",
    "RetryPolicy",
    "task_id_in_path",
]


# ---------------------------------------------------------------- wire vocabulary

_TASK_IN_PATH = re.compile(r"/inference_tasks/(\d+)")


def task_id_in_path(path: str) -> int | None:
    """The task id in a Relay API path (`/v1/inference_tasks/{id}/...`); None if it names none."""
    match = _TASK_IN_PATH.search(path)
    return int(match.group(1)) if match else None


class RelayTaskStatus(IntEnum):
    """The `status` of a TASK record."""

    CREATED = 0  # seen on chain, args not uploaded
    ARGS_UPLOADED = 1
    ABORTED = 2
    PENDING_RESULTS = 3  # TaskSuccess seen, images not uploaded
    RESULTS_UPLOADED = 4


class RelayMessage(StrEnum):
    """Messages of the Relay's validation errors, verbatim."""

    INVALID_SIGNATURE = "Invalid signature"
    TASK_NOT_ON_CHAIN = "Task not found on the Blockchain"
    SIGNER_NOT_ALLOWED = "Signer not allowed"
    TASK_ALREADY_UPLOADED = "Task already uploaded"
    TASK_HASH_MISMATCH = "Task hash mismatch"
    TASK_NOT_FOUND = "Task not found"
    TASK_NOT_READY = "Task not ready"
    TASK_NOT_SUCCESS = "Task not success"
    WRONG_IMAGES = "Wrong images uploaded"
    RESULTS_NOT_UPLOADED = "Task results not uploaded"
    FILE_NOT_FOUND = "File not found"


class RelayField(StrEnum):
    """`field_name`s of the Relay's validation errors."""

    SIGNATURE = "signature"
    TIMESTAMP = "timestamp"
    TASK_ID = "task_id"
    TASK_ARGS = "task_args"
    TASK_HASH = "task_hash"
    IMAGES = "images"
    IMAGE_NUM = "image_num"
    BODY = "body"


# Answers that mean "not yet": the Relay polls the chain (so a fresh task or a fresh
# TaskSuccess is unknown for a few seconds), and uploads take time.
TRANSIENT_MESSAGES = frozenset(
    {
        RelayMessage.TASK_NOT_ON_CHAIN,
        RelayMessage.TASK_NOT_READY,
        RelayMessage.RESULTS_NOT_UPLOADED,
        RelayMessage.TASK_NOT_FOUND,
    }
)


class RelaySelectedNode(BaseModel):
    """One entry of a TASK's `SelectedNodes` (a row of the real Relay's database)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    id: int = Field(alias="ID")
    created_at: str = Field(alias="CreatedAt")
    updated_at: str = Field(alias="UpdatedAt")
    deleted_at: str | None = Field(default=None, alias="DeletedAt")
    inference_task_id: int = Field(alias="InferenceTaskID")
    node_address: str = Field(alias="NodeAddress")
    result: str = Field(default="", alias="Result")
    is_result_selected: bool = Field(default=False, alias="IsResultSelected")


class RelayTask(BaseModel):
    """The TASK record the Relay answers with.

    `selected_nodes` is None in the answer to an args upload (the real Relay does
    not load them there) and a list, in round order, in `GET /v1/inference_tasks/{id}`.
    Unknown keys (later Relay versions add some) are ignored.
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    id: int = Field(alias="ID")
    created_at: str = Field(alias="CreatedAt")
    updated_at: str = Field(alias="UpdatedAt")
    deleted_at: str | None = Field(default=None, alias="DeletedAt")
    task_args: str
    task_id: int
    creator: str
    task_hash: str
    data_hash: str
    status: RelayTaskStatus
    selected_nodes: list[RelaySelectedNode] | None = Field(default=None, alias="SelectedNodes")

    @property
    def result_node(self) -> RelaySelectedNode | None:
        for node in self.selected_nodes or ():
            if node.is_result_selected:
                return node
        return None


# ---------------------------------------------------------------- errors


class RelayError(Exception):
    """The Relay refused a request, or could not be reached.

    `status_code` is None when no HTTP answer came back (connection error, timeout);
    `field` is the `field_name` of a validation error, else None.
    `after_ambiguous_failure` is set when an earlier attempt of the same call may
    have reached the Relay (timeout, dropped connection, 5xx) before this answer.
    """

    def __init__(self, status_code: int | None, message: str, field: str | None = None) -> None:
        where = f" (field {field})" if field else ""
        status = f"HTTP {status_code}" if status_code is not None else "no answer"
        super().__init__(f"Relay: {message}{where} [{status}]")
        self.status_code = status_code
        self.message = message
        self.field = field
        self.after_ambiguous_failure = False


class RelayNotReady(RelayError):
    """A transient answer: the Relay or the other party has not caught up yet."""


class RelayUnavailable(RelayError):
    """No usable answer: connection error, timeout, HTTP 5xx (or 408, 429), after all retries."""


class RelayAlreadyDone(RelayError):
    """The upload was already accepted ("Task already uploaded", or results uploaded)."""


class RelayProtocolError(RelayError):
    """A 2xx answer whose body is not what PROTOCOL.md says."""


# ---------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try a request and how long to wait in between.

    Waits grow as `backoff * 2**n`, capped at `max_backoff` seconds. Connection
    errors, timeouts, 5xx, 408 and 429 answers are always retried; the transient
    answers (`RelayNotReady`) only when `retry_transient`.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 8.0
    retry_transient: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy needs at least one attempt, got {self.attempts}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError(f"RetryPolicy waits must not be negative: {self.backoff}, {self.max_backoff}")

    def delay(self, retry: int) -> float:
        """The wait before retry number `retry` (0 for the first retry)."""
        return float(min(self.backoff * (2**retry), self.max_backoff))


NO_RETRY = RetryPolicy(attempts=1, retry_transient=False)

# Answered by proxies in front of a Relay rather than by the Relay: worth a retry.
_BUSY_STATUSES = frozenset({408, 429})


# ---------------------------------------------------------------- the client


class RelayClient:
    """Signed calls to the Relay's four task endpoints.

    `http` is an `httpx.Client` (its `base_url` pointing at the Relay, or any
    transport onto it) or a base URL such as ``"https://relay.h.crynux.ai"``.
    `clock` gives Unix seconds for the signatures; it must agree with the Relay's
    clock within 60 s. `sleep` is called between retries with the wait in seconds.
    """

    def __init__(
        self,
        http: httpx.Client | str,
        *,
        clock: Callable[[], int],
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        if isinstance(http, str):
            self._http = httpx.Client(base_url=http, timeout=timeout, verify=shared_tls_context())
            self._owns_http = True
        else:
            self._http = http
            self._owns_http = False
        self._clock = clock
        self.retry = retry
        self._sleep = sleep

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ endpoints

    def upload_task_args(self, account: LocalAccount, task_id: int, task_args: str) -> RelayTask:
        """Upload the task-args JSON string of task `task_id` (signed by its creator).

        If an earlier attempt of this call may have reached the Relay (a timeout, a
        dropped connection, a 5xx) and the retry hears "Task already uploaded", the
        stored task is fetched and returned when its args are exactly `task_args`.
        """

        def attempt() -> httpx.Response:
            timestamp = self._timestamp()
            params = {"task_args": task_args, "task_id": task_id}
            signature = sign_request(params, timestamp, account)
            return self._http.post(
                self._url("/v1/inference_tasks"),
                json={**params, "timestamp": timestamp, "signature": signature},
            )

        try:
            body = self._call(attempt)
        except RelayAlreadyDone as done:
            if not done.after_ambiguous_failure:
                raise
            stored = self._confirm(done, lambda: self.get_task(account, task_id))
            if stored.task_args != task_args:
                raise
            return stored
        return self._task_of(body)

    def get_task(self, account: LocalAccount, task_id: int) -> RelayTask:
        """The TASK record, with its selected nodes (creator or a selected node)."""

        def attempt() -> httpx.Response:
            timestamp = self._timestamp()
            signature = sign_request({"task_id": task_id}, timestamp, account)
            return self._http.get(self._url(_signed(f"/v1/inference_tasks/{task_id}", timestamp, signature)))

        return self._task_of(self._call(attempt))

    def upload_results(self, account: LocalAccount, task_id: int, images: Sequence[bytes]) -> None:
        """Upload the result images, PNG bytes in image order (the result node only).

        As for args: after an ambiguous failure, a retry that hears "Task not
        success" checks the task and counts status 4 (results uploaded) as done.
        """
        files = [("images", (f"{index}.png", bytes(image), "image/png")) for index, image in enumerate(images)]

        def attempt() -> httpx.Response:
            timestamp = self._timestamp()
            signature = sign_request({"task_id": task_id}, timestamp, account)
            return self._http.post(
                self._url(f"/v1/inference_tasks/{task_id}/results"),
                data={"timestamp": str(timestamp), "signature": signature},
                files=files,
            )

        try:
            self._call(attempt)
        except RelayError as error:
            if not (error.after_ambiguous_failure and error.message == RelayMessage.TASK_NOT_SUCCESS):
                raise
            if self._confirm(error, lambda: self.get_task(account, task_id)).status != RelayTaskStatus.RESULTS_UPLOADED:
                raise

    def download_result(self, account: LocalAccount, task_id: int, image_num: int) -> bytes:
        """The PNG bytes of image `image_num` (0-based) of the task (its creator only)."""
        if image_num < 0:
            raise ValueError(f"image_num must not be negative, got {image_num}")

        def attempt() -> httpx.Response:
            timestamp = self._timestamp()
            params = {"image_num": str(image_num), "task_id": task_id}
            signature = sign_request(params, timestamp, account)
            return self._http.get(
                self._url(_signed(f"/v1/inference_tasks/{task_id}/results/{image_num}", timestamp, signature))
            )

        return self._call(attempt, raw=True)

    # ------------------------------------------------------------ internals

    @staticmethod
    def _confirm(error: RelayError, read_back: Callable[[], RelayTask]) -> RelayTask:
        """Read the task back to settle an ambiguous `error`; if that fails, `error` stands."""
        try:
            return read_back()
        except RelayError as failure:
            raise error from failure

    def _timestamp(self) -> int:
        return int(self._clock())

    def _url(self, path: str) -> str:
        """`path` on the client's base URL, whole. Given a relative one, httpx parses it
        and then the merged URL again, each a pass over every character (a signed GET's
        URL is 200 long); given the whole URL, it parses once."""
        base = self._http.base_url
        if not base.is_absolute_url or base.query:
            return path  # no base URL (the transport decides) or one with a query: httpx merges
        root = str(base)  # httpx writes a base URL's root path "/" as nothing
        return (root if root.endswith("/") else root + "/") + path.lstrip("/")

    def _call(self, attempt: Callable[[], httpx.Response], raw: bool = False) -> Any:
        """Run `attempt` under the retry policy; the decoded body (or bytes if `raw`)."""
        policy = self.retry
        ambiguous = False  # an earlier attempt may have reached the Relay
        for number in range(policy.attempts):
            error: RelayError
            try:
                response = attempt()
            except httpx.TransportError as exc:
                error = RelayUnavailable(None, f"{type(exc).__name__}: {exc}")
                ambiguous = True
            else:
                if response.is_success:
                    return response.content if raw else _json_body(response)
                error = _error_of(response)
                error.after_ambiguous_failure = ambiguous
                if response.status_code >= 500:
                    ambiguous = True
            retryable = isinstance(error, RelayUnavailable) or (
                isinstance(error, RelayNotReady) and policy.retry_transient
            )
            if not retryable or number + 1 == policy.attempts:
                raise error
            self._sleep(policy.delay(number))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _task_of(self, body: Any) -> RelayTask:
        data = body.get("data") if isinstance(body, Mapping) else None
        try:
            return RelayTask.model_validate(data)
        except ValidationError as exc:
            raise RelayProtocolError(200, f"the answer is not a TASK record: {exc}") from None


def _signed(path: str, timestamp: int, signature: str) -> str:
    """`path` with the query of a signed GET. Built once here: given `params=`, httpx
    merges and re-validates the whole URL, character by character, three times a
    request (a third of its client-side cost, the signature being 132 characters)."""
    return f"{path}?{urlencode({'timestamp': timestamp, 'signature': signature})}"


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RelayProtocolError(response.status_code, f"the answer is not JSON: {response.text[:200]!r}") from None


def _error_of(response: httpx.Response) -> RelayError:
    """The RelayError for a non-2xx answer, classified by status and message."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    message = response.text[:200] or response.reason_phrase
    field: str | None = None
    if isinstance(body, Mapping):
        data = body.get("data")
        if body.get("message") == "validation_error" and isinstance(data, Mapping):
            message = str(data.get("message", ""))
            field = str(data["field_name"]) if data.get("field_name") is not None else None
        elif isinstance(body.get("message"), str):
            message = body["message"]
    if status >= 500 or status in _BUSY_STATUSES:
        return RelayUnavailable(status, message, field)
    if message in TRANSIENT_MESSAGES:
        return RelayNotReady(status, message, field)
    if message == RelayMessage.TASK_ALREADY_UPLOADED:
        return RelayAlreadyDone(status, message, field)
    return RelayError(status, message, field)
