"""Client JSON the Relay must not even parse: nested past 64 levels (which would
overflow the C parser's stack under py-evm's recursion limit and kill the process)
or over the body limit. Each is a 400 naming the field, and the Relay lives on."""

from __future__ import annotations

import json

import httpx
import pytest

from hydrogen_harness.fakes.relay import MAX_JSON_BODY_BYTES, MemoryStorage, RelayService, create_app, serve_relay
from hydrogen_harness.boundary.json_guard import MAX_DEPTH
from tests.relay.wire import Wire, assert_refused
from tests.relay.world import RelayWorld

DEEP = 100_000  # what crashed the process: 50,000 levels survived
JSON = {"content-type": "application/json"}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _still_serving(http: httpx.Client, wire: Wire, world: RelayWorld) -> None:
    """A follow-up request is answered as usual."""
    response = wire.post_args(world.stranger, 999, world.created.args)
    assert_refused(response, "task_id", "Task not found on the Blockchain")


@pytest.mark.parametrize("headers", [JSON, {}], ids=["json", "no content type"])
def test_a_deeply_nested_body_is_refused(http: httpx.Client, wire: Wire, world: RelayWorld, headers: dict[str, str]) -> None:
    response = http.post("/v1/inference_tasks", content=b"[" * DEEP, headers=headers)
    assert_refused(response, "body", f"Malformed JSON: the JSON nests {DEEP} levels deep, at most {MAX_DEPTH}")
    _still_serving(http, wire, world)


def test_deep_nesting_inside_a_valid_looking_body(http: httpx.Client) -> None:
    body = json.dumps({"task_args": "{}", "task_id": 1, "timestamp": 1, "signature": "0x00", "extra": json.loads(_nested(MAX_DEPTH))})
    response = http.post("/v1/inference_tasks", content=body.encode(), headers=JSON)
    assert_refused(response, "body", f"Malformed JSON: the JSON nests {MAX_DEPTH + 1} levels deep, at most {MAX_DEPTH}")


def test_nesting_up_to_the_limit_is_parsed(http: httpx.Client) -> None:
    # 63 levels in "extra", 64 with the body's own object: parsed, then refused on its (bad) signature.
    body = json.dumps({"task_args": "{}", "task_id": 1, "timestamp": 1, "signature": "0x00", "extra": json.loads(_nested(MAX_DEPTH - 1))})
    response = http.post("/v1/inference_tasks", content=body.encode(), headers=JSON)
    assert_refused(response, "signature", "Invalid signature")


def test_deeply_nested_task_args_are_refused(http: httpx.Client, wire: Wire, world: RelayWorld) -> None:
    # task_args is checked before the signer, so a throwaway key is enough to send it.
    response = wire.post_args(world.stranger, world.created.task_id, "[" * DEEP)
    assert_refused(response, "task_args", f"not valid JSON: the JSON nests {DEEP} levels deep, at most {MAX_DEPTH}")
    _still_serving(http, wire, world)


def test_brackets_inside_strings_are_not_nesting(wire: Wire, world: RelayWorld) -> None:
    args = json.dumps({"base_model": "m", "prompt": "[{" * 5_000, "task_config": {}})
    response = wire.post_args(world.stranger, 999, args)
    assert_refused(response, "task_id", "Task not found on the Blockchain")


def test_task_args_nested_one_level_too_deep(wire: Wire, world: RelayWorld) -> None:
    args = json.dumps({"base_model": "m", "prompt": "p", "task_config": {}, "extra": json.loads(_nested(MAX_DEPTH))})
    response = wire.post_args(world.stranger, 999, args)
    assert_refused(response, "task_args", f"not valid JSON: the JSON nests {MAX_DEPTH + 1} levels deep, at most {MAX_DEPTH}")


def test_a_content_length_of_thousands_of_digits(http: httpx.Client) -> None:
    # The client lies about its length; the Relay must not try int() on 10,000 digits.
    request = http.build_request("POST", "/v1/inference_tasks", content=b"{}", headers=JSON)
    request.headers["content-length"] = "9" * 10_000
    assert_refused(http.send(request), "body", f"Request too large: at most {MAX_JSON_BODY_BYTES} bytes")


def test_the_served_relay_survives_nested_json(world: RelayWorld) -> None:
    """Over a real socket, as an attacker (or any web page) would send it."""
    service = RelayService(world.history, MemoryStorage(), clock=world.clock)
    with serve_relay(create_app(service)) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        wire = Wire(http, world.clock)
        response = http.post("/v1/inference_tasks", content=b"[" * DEEP, headers=JSON)
        assert_refused(response, "body", f"Malformed JSON: the JSON nests {DEEP} levels deep, at most {MAX_DEPTH}")
        response = wire.post_args(world.stranger, world.created.task_id, "[" * DEEP)
        assert_refused(response, "task_args", f"not valid JSON: the JSON nests {DEEP} levels deep, at most {MAX_DEPTH}")
        _still_serving(http, wire, world)
