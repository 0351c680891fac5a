"""RelayClient against the fake Relay, with faults injected by respx: retries,
growing back-off, transient answers, and uploads whose answer was lost."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account

from hydrogen_harness.fakes.relay import FaultInjector, RelayService, create_app
from hydrogen_harness.client.relay import (
    RelayClient,
    RelayError,
    RelayNotReady,
    RelayTask,
    RelayTaskStatus,
    RelayUnavailable,
    NO_RETRY,
    RetryPolicy,
)
from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.protocol.signing import sign_request
from tests.relay.wire import Wire
from tests.relay.world import RelayWorld

ARGS_PATH = "/v1/inference_tasks"
POLICY = RetryPolicy(attempts=5, backoff=0.5, max_backoff=4.0, retry_transient=True)


@pytest.fixture
def faults(relay: RelayService) -> Iterator[FaultInjector]:
    injector = FaultInjector(create_app(relay))
    yield injector
    injector.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> Iterator[RelayClient]:
    with faults.client() as http:
        yield RelayClient(http, clock=world.clock, retry=POLICY, sleep=sleeps.append)


def _sent(faults: FaultInjector, method: str, path: str) -> int:
    return sum(1 for r in faults.requests if r.method == method and r.url.path == path)


def _result_path(task_id: int, image_num: int) -> str:
    return f"/v1/inference_tasks/{task_id}/results/{image_num}"


def test_the_whole_exchange(client: RelayClient, world: RelayWorld) -> None:
    task = world.succeeded
    uploaded = client.upload_task_args(world.creator, task.task_id, task.args)
    assert isinstance(uploaded, RelayTask) and uploaded.status is RelayTaskStatus.PENDING_RESULTS
    assert uploaded.selected_nodes is None
    fetched = client.get_task(task.nodes[2], task.task_id)
    assert fetched.task_args == task.args
    assert fetched.result_node is not None and fetched.result_node.node_address == task.nodes[0].address
    client.upload_results(task.nodes[0], task.task_id, task.images)
    assert client.get_task(world.creator, task.task_id).status is RelayTaskStatus.RESULTS_UPLOADED
    assert [client.download_result(world.creator, task.task_id, i) for i in range(3)] == list(task.images)


def test_signed_gets_send_the_query_params_would(client: RelayClient, faults: FaultInjector, world: RelayWorld) -> None:
    """The client writes a signed GET's query itself: the URL is the one httpx builds
    from `params=`, and the signature in it is the one the Relay checks."""
    task = world.succeeded
    client.upload_task_args(world.creator, task.task_id, task.args)
    client.get_task(task.nodes[1], task.task_id)
    gets = [r for r in faults.requests if r.method == "GET"]
    assert len(gets) == 1
    sent = gets[0].url
    params = dict(sent.params)
    assert set(params) == {"timestamp", "signature"}
    timestamp, signature = int(params["timestamp"]), params["signature"]
    rebuilt = httpx.URL(f"http://relay.invalid/v1/inference_tasks/{task.task_id}", params={"timestamp": timestamp, "signature": signature})
    assert sent == rebuilt and sent.query == rebuilt.query
    assert sign_request({"task_id": task.task_id}, timestamp, task.nodes[1]) == signature


@pytest.mark.parametrize("base_url", ["http://relay.invalid", "http://relay.invalid:8080/prefix", "https://relay.example/a/b/"])
def test_requests_go_where_httpx_would_send_the_relative_path(base_url: str) -> None:
    """The client hands httpx whole URLs: each is the one httpx makes of the base URL
    and the endpoint's relative path."""
    account = Account.from_key(b"\x01" * 32)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"png") if request.method == "GET" else httpx.Response(200, json={"message": "success"})

    with httpx.Client(base_url=base_url, transport=httpx.MockTransport(answer)) as http:
        client = RelayClient(http, clock=lambda: 1_700_000_000, retry=NO_RETRY)
        assert client.download_result(account, 7, 2) == b"png"
        client.upload_results(account, 7, [b"image"])
        get, post = seen
        params = {"timestamp": 1_700_000_000, "signature": dict(get.url.params)["signature"]}
        assert get.url == http.build_request("GET", "/v1/inference_tasks/7/results/2", params=params).url
        assert post.url == http.build_request("POST", "/v1/inference_tasks/7/results").url
        assert str(post.url).startswith(base_url.rstrip("/") + "/v1/")


def test_5xx_answers_are_retried_with_growing_waits(
    client: RelayClient, faults: FaultInjector, world: RelayWorld, sleeps: list[float]
) -> None:
    faults.fail_next(3, "POST", ARGS_PATH, status=503)
    task = client.upload_task_args(world.creator, world.created.task_id, world.created.args)
    assert task.status is RelayTaskStatus.ARGS_UPLOADED
    assert _sent(faults, "POST", ARGS_PATH) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_connection_errors_are_retried(client: RelayClient, faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> None:
    task = world.succeeded
    faults.fail_next(2, "GET", re.compile(r"^/v1/inference_tasks/\d+$"), error=httpx.ConnectError)
    faults.fail_next(1, "POST", ARGS_PATH, error=httpx.ConnectError)
    client.upload_task_args(world.creator, task.task_id, task.args)
    assert client.get_task(task.nodes[1], task.task_id).task_id == task.task_id
    assert _sent(faults, "POST", ARGS_PATH) == 2
    assert _sent(faults, "GET", f"/v1/inference_tasks/{task.task_id}") == 3
    assert sleeps == [0.5, 0.5, 1.0]  # each call starts its back-off afresh


def test_timeouts_are_retried(client: RelayClient, faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> None:
    task = world.succeeded
    Wire(faults.client(), world.clock).upload(task.result_node, task.task_id, task.images)
    faults.fail_next(2, "GET", _result_path(task.task_id, 1), error=httpx.ReadTimeout)
    assert client.download_result(world.creator, task.task_id, 1) == task.images[1]
    assert _sent(faults, "GET", _result_path(task.task_id, 1)) == 3
    assert sleeps == [0.5, 1.0]


def test_a_relay_that_keeps_dropping_connections(faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> None:
    policy = RetryPolicy(attempts=6, backoff=0.5, max_backoff=4.0)
    faults.drop_next(100, None, re.compile(r"^/v1/inference_tasks/"))
    with faults.client() as http:
        client = RelayClient(http, clock=world.clock, retry=policy, sleep=sleeps.append)
        with pytest.raises(RelayUnavailable) as caught:
            client.get_task(world.creator, world.succeeded.task_id)
    assert caught.value.status_code is None
    assert "RemoteProtocolError" in caught.value.message
    assert len(faults.requests) == 6
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]  # doubling, then capped


def test_a_lost_answer_to_an_args_upload(client: RelayClient, faults: FaultInjector, world: RelayWorld) -> None:
    # The upload is stored but its answer is lost; the retry hears "Task already
    # uploaded", and the client confirms by reading the task back.
    task = world.created
    faults.fail_next(1, "POST", ARGS_PATH, error=httpx.ReadTimeout, after_delivery=True)
    uploaded = client.upload_task_args(world.creator, task.task_id, task.args)
    assert uploaded.task_args == task.args and uploaded.selected_nodes is not None
    assert _sent(faults, "POST", ARGS_PATH) == 2
    assert _sent(faults, "GET", f"/v1/inference_tasks/{task.task_id}") == 1


def test_already_uploaded_without_a_lost_answer_is_an_error(client: RelayClient, world: RelayWorld) -> None:
    task = world.created
    client.upload_task_args(world.creator, task.task_id, task.args)
    with pytest.raises(RelayError, match="Task already uploaded"):
        client.upload_task_args(world.creator, task.task_id, task.args)


def test_a_lost_answer_to_a_results_upload(client: RelayClient, faults: FaultInjector, world: RelayWorld) -> None:
    # The retry hears "Task not success"; reading the task back shows status 4.
    task = world.succeeded
    client.upload_task_args(world.creator, task.task_id, task.args)
    path = f"/v1/inference_tasks/{task.task_id}/results"
    faults.fail_next(1, "POST", path, status=502, after_delivery=True)
    client.upload_results(task.result_node, task.task_id, task.images)  # type: ignore[arg-type]
    assert _sent(faults, "POST", path) == 2
    assert _sent(faults, "GET", f"/v1/inference_tasks/{task.task_id}") == 1


def test_an_ambiguous_upload_that_cannot_be_confirmed(client: RelayClient, faults: FaultInjector, world: RelayWorld) -> None:
    # Without args on the Relay the task cannot be read back: the upload's own
    # answer stands, with the failed read-back as its cause.
    task = world.succeeded
    path = f"/v1/inference_tasks/{task.task_id}/results"
    faults.fail_next(1, "POST", path, status=502, after_delivery=True)
    with pytest.raises(RelayError, match="Task not success") as caught:
        client.upload_results(task.result_node, task.task_id, task.images)  # type: ignore[arg-type]
    assert isinstance(caught.value.__cause__, RelayNotReady)


def test_transient_answers_are_waited_out(faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> None:
    # The creator asks before the result node has uploaded; while the client
    # waits, the upload happens.
    task = world.succeeded
    uploader = Wire(faults.client(), world.clock)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            assert uploader.upload(task.result_node, task.task_id, task.images).status_code == 200

    with faults.client() as http:
        waiting = RelayClient(http, clock=world.clock, retry=POLICY, sleep=sleep)
        assert waiting.download_result(world.creator, task.task_id, 0) == task.images[0]
    assert _sent(faults, "GET", _result_path(task.task_id, 0)) == 3
    assert sleeps == [0.5, 1.0]


def test_transient_answers_raise_at_once_without_retry_transient(faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> None:
    policy = RetryPolicy(attempts=5, retry_transient=False)
    with faults.client() as http:
        client = RelayClient(http, clock=world.clock, retry=policy, sleep=sleeps.append)
        with pytest.raises(RelayNotReady) as caught:
            client.download_result(world.creator, world.succeeded.task_id, 0)
        with pytest.raises(RelayNotReady, match="Task not ready"):
            client.get_task(world.creator, world.created.task_id)
    assert (caught.value.status_code, caught.value.field, caught.value.message) == (400, "task_id", "Task results not uploaded")
    assert len(faults.requests) == 2 and sleeps == []


def test_refusals_are_not_retried(client: RelayClient, faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> None:
    task = world.succeeded
    client.upload_task_args(world.creator, task.task_id, task.args)
    with pytest.raises(RelayError) as caught:
        client.get_task(world.stranger, task.task_id)
    assert not isinstance(caught.value, (RelayNotReady, RelayUnavailable))
    assert (caught.value.status_code, caught.value.field, caught.value.message) == (400, "signature", "Signer not allowed")
    assert sleeps == []


def test_a_5xx_that_outlasts_the_attempts(client: RelayClient, faults: FaultInjector, world: RelayWorld, sleeps: list[float]) -> None:
    faults.fail_next(5, "POST", ARGS_PATH, status=500)
    with pytest.raises(RelayUnavailable) as caught:
        client.upload_task_args(world.creator, world.created.task_id, world.created.args)
    assert caught.value.status_code == 500
    assert caught.value.message == "injected fault: HTTP 500"
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_a_negative_image_number_is_refused_locally(client: RelayClient, world: RelayWorld) -> None:
    with pytest.raises(ValueError, match="image_num"):
        client.download_result(world.creator, world.succeeded.task_id, -1)


def test_clients_made_from_a_url_share_one_tls_context_that_still_checks_certificates() -> None:
    """httpx builds a TLS context per client (about 30 ms of CPU, even for plain HTTP); the
    harness's clients share one, which verifies certificates and host names against the
    same CA bundle as httpx's own default."""
    clients = [RelayClient(url, clock=lambda: 1_700_000_000) for url in ("http://127.0.0.1:1", "https://relay.example")]
    try:
        contexts = [client._http._transport._pool._ssl_context for client in clients]  # type: ignore[attr-defined]
        assert contexts[0] is contexts[1] is shared_tls_context()
    finally:
        for client in clients:
            client.close()
    shared, default = shared_tls_context(), httpx.create_ssl_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert shared.get_ca_certs() == default.get_ca_certs() != []
