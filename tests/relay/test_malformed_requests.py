"""Requests the Relay cannot even bind: always a 400 naming the field, never a 422
or a 500; unknown paths are 404 and wrong methods 405."""

from __future__ import annotations

import json

import httpx
import pytest

from hydrogen_harness.fakes.relay import MAX_JSON_BODY_BYTES, MemoryStorage, RelayInternalError, RelayService, create_app, in_process_client
from tests.relay.wire import assert_refused
from tests.relay.world import RelayWorld

GOOD = {"task_args": "{}", "task_id": 1, "timestamp": 1, "signature": "0x00"}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b"{bad", "body", "Malformed JSON"),
        (b"\x89PNG\r\n\x1a\n", "body", "Malformed body"),
        (b"", "body", "The body must be a JSON object"),
        (b"[1, 2]", "body", "The body must be a JSON object"),
        (b'"task_args"', "body", "The body must be a JSON object"),
        (b'{"task_id": 1, "timestamp": 1, "signature": "0x00"}', "task_args", "Field required"),
        (b'{"task_args": "{}", "timestamp": 1, "signature": "0x00"}', "task_id", "Field required"),
        (b'{"task_args": "{}", "task_id": 1, "signature": "0x00"}', "timestamp", "Field required"),
        (b'{"task_args": "{}", "task_id": 1, "timestamp": 1}', "signature", "Field required"),
        (b'{"task_args": {}, "task_id": 1, "timestamp": 1, "signature": "0x00"}', "task_args", "Input should be a valid string"),
        (b'{"task_args": "{}", "task_id": "1", "timestamp": 1, "signature": "0x00"}', "task_id", "Input should be a valid integer"),
        (b'{"task_args": "{}", "task_id": 1.5, "timestamp": 1, "signature": "0x00"}', "task_id", "Input should be a valid integer"),
        (b'{"task_args": "{}", "task_id": true, "timestamp": 1, "signature": "0x00"}', "task_id", "Input should be a valid integer"),
        (b'{"task_args": "{}", "task_id": -1, "timestamp": 1, "signature": "0x00"}', "task_id", "Input should be greater than or equal to 0"),
        (b'{"task_args": "{}", "task_id": 18446744073709551616, "timestamp": 1, "signature": "0x00"}', "task_id", "Input should be less than or equal to"),
        (b'{"task_args": "{}", "task_id": 1, "timestamp": "now", "signature": "0x00"}', "timestamp", "Input should be a valid integer"),
        (b'{"task_args": "{}", "task_id": 1, "timestamp": 1, "signature": 7}', "signature", "Input should be a valid string"),
    ],
)
def test_malformed_json_bodies(http: httpx.Client, body: bytes, field: str, message: str) -> None:
    response = http.post("/v1/inference_tasks", content=body, headers={"content-type": "application/json"})
    assert_refused(response, field, message, prefix=True)


@pytest.mark.parametrize("field", ["task_id", "timestamp", "extra"])
def test_an_integer_of_thousands_of_digits_in_the_body(http: httpx.Client, field: str) -> None:
    # json.loads refuses integers past 4,300 digits with a ValueError (not a JSONDecodeError).
    body = {**GOOD, field: 0}
    raw = json.dumps(body).replace(f'"{field}": 0', f'"{field}": {"1" * 5_000}').encode()
    response = http.post("/v1/inference_tasks", content=raw, headers={"content-type": "application/json"})
    assert_refused(response, "body", "Malformed JSON: Exceeds the limit (4300 digits) for integer string conversion", prefix=True)
    assert "set_int_max_str_digits" not in response.text  # Python's advice is not for the client


def test_a_body_that_is_not_json_at_all(http: httpx.Client) -> None:
    response = http.post("/v1/inference_tasks", content=b"task_id=1", headers={"content-type": "text/plain"})
    assert_refused(response, "body", "The body must be a JSON object")


def test_a_json_body_too_big(http: httpx.Client) -> None:
    # JSON bodies have their own, smaller limit than multipart uploads (json_limits.py).
    body = b'{"task_args": "' + b"a" * MAX_JSON_BODY_BYTES + b'"}'
    response = http.post("/v1/inference_tasks", content=body, headers={"content-type": "application/json"})
    assert_refused(response, "body", f"Request too large: at most {MAX_JSON_BODY_BYTES} bytes")


def test_a_streamed_json_body_too_big(http: httpx.Client) -> None:
    def body():  # type: ignore[no-untyped-def]
        yield b'{"task_args": "'
        yield b"a" * MAX_JSON_BODY_BYTES
        yield b'"}'

    response = http.post("/v1/inference_tasks", content=body(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_refused(response, "body", f"Request too large: at most {MAX_JSON_BODY_BYTES} bytes")


def test_unknown_fields_are_ignored(http: httpx.Client) -> None:
    # Go's decoder ignores them; the request then fails on its (bad) signature.
    response = http.post("/v1/inference_tasks", json={**GOOD, "extra": [1]})
    assert_refused(response, "signature", "Invalid signature")


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        ("-1", "must be an unsigned decimal integer"),
        ("+1", "must be an unsigned decimal integer"),
        ("1_000", "must be an unsigned decimal integer"),
        ("0x10", "must be an unsigned decimal integer"),
        ("abc", "must be an unsigned decimal integer"),
        ("1.0", "must be an unsigned decimal integer"),
        ("%201", "must be an unsigned decimal integer"),
        ("18446744073709551616", "Input should be less than or equal to 18446744073709551615"),
        ("9" * 400, "Input should be less than or equal to 18446744073709551615"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/inference_tasks/{}", "/v1/inference_tasks/{}/results/0"])
def test_bad_task_ids_in_the_path(http: httpx.Client, path: str, task_id: str, message: str) -> None:
    response = http.get(path.format(task_id), params={"timestamp": 1, "signature": "0x00"})
    assert_refused(response, "task_id", message)


def test_a_bad_task_id_on_upload(http: httpx.Client) -> None:
    response = http.post("/v1/inference_tasks/-5/results", data={"timestamp": "1", "signature": "0x00"})
    assert_refused(response, "task_id", "must be an unsigned decimal integer")


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"signature": "0x00"}, "timestamp", "Field required"),
        ({"timestamp": "1"}, "signature", "Field required"),
        ({"timestamp": "1.5", "signature": "0x00"}, "timestamp", "must be a decimal integer"),
        ({"timestamp": "+1", "signature": "0x00"}, "timestamp", "must be a decimal integer"),
        ({"timestamp": str(2**63), "signature": "0x00"}, "timestamp", "Input should be less than or equal to"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/inference_tasks/1", "/v1/inference_tasks/1/results/0"])
def test_bad_query_parameters(http: httpx.Client, path: str, query: dict[str, str], field: str, message: str) -> None:
    assert_refused(http.get(path, params=query), field, message, prefix=True)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/v1/inference_tasks/", 404),
        ("GET", "/v1/inference_tasks/1/2", 404),
        ("GET", "/v2/inference_tasks/1", 404),
        ("PUT", "/v1/inference_tasks", 405),
        ("GET", "/v1/inference_tasks", 405),
        ("DELETE", "/v1/inference_tasks/1", 405),
    ],
)
def test_unknown_paths_and_methods(http: httpx.Client, method: str, path: str, status: int) -> None:
    response = http.request(method, path)
    assert response.status_code == status
    assert set(response.json()) == {"message"}


def test_the_openapi_document_lists_400_not_422(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    paths = document["paths"]
    assert set(paths) == {
        "/v1/inference_tasks",
        "/v1/inference_tasks/{task_id}",
        "/v1/inference_tasks/{task_id}/results",
        "/v1/inference_tasks/{task_id}/results/{image_num}",
    }
    for operations in paths.values():
        for operation in operations.values():
            assert "400" in operation["responses"] and "422" not in operation["responses"]


class _BrokenChain:
    def head(self) -> int:
        raise RelayInternalError("the chain is unreachable")

    def events(self, from_block: int, to_block: int) -> list:  # type: ignore[type-arg]
        return []

    def block_hash(self, number: int) -> bytes | None:
        return None


def test_a_relay_that_lost_its_chain_answers_500(world: RelayWorld) -> None:
    service = RelayService(_BrokenChain(), MemoryStorage(), clock=world.clock)
    with in_process_client(create_app(service)) as http:
        response = http.get("/v1/inference_tasks/1", params={"timestamp": world.clock(), "signature": "0x00"})
    assert response.status_code == 500
    assert response.json() == {"message": "the chain is unreachable"}


def test_an_unexpected_error_is_a_500_with_a_message(world: RelayWorld) -> None:
    class Exploding(_BrokenChain):
        def head(self) -> int:
            raise OSError("connection refused")

    service = RelayService(Exploding(), MemoryStorage(), clock=world.clock)
    with in_process_client(create_app(service)) as http:
        response = http.get("/v1/inference_tasks/1", params={"timestamp": world.clock(), "signature": "0x00"})
    assert response.status_code == 500
    assert response.json() == {"message": "Internal error: OSError: connection refused"}
