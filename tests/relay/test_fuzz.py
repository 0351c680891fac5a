"""Schemathesis fuzz of the Relay's OpenAPI document, in process.

Bounded and deterministic: 30 derandomised examples per operation, positive and
negative, no example database. Every answer must be below 500, and a refused
request must leave the Relay's state (statuses, args, images, cursor) unchanged;
every 400 has the protocol's validation_error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from hydrogen_harness.fakes.relay import MemoryStorage, RelayService, create_app, in_process_client
from tests.relay.wire import Wire
from tests.relay.world import RelayWorld

OPERATIONS = [
    "POST /v1/inference_tasks",
    "GET /v1/inference_tasks/{task_id}",
    "POST /v1/inference_tasks/{task_id}/results",
    "GET /v1/inference_tasks/{task_id}/results/{image_num}",
]


@pytest.fixture(scope="module")
def target(world: RelayWorld) -> Iterator[tuple[RelayService, Any]]:
    """A Relay holding some state: args of two tasks, the images of one."""
    relay = RelayService(world.history, MemoryStorage(), clock=world.clock)
    app = create_app(relay)
    with in_process_client(app) as http:
        wire = Wire(http, world.clock)
        for task in (world.created, world.succeeded):
            assert wire.post_args(world.creator, task.task_id, task.args).status_code == 200
        assert wire.upload(world.succeeded.result_node, world.succeeded.task_id, world.succeeded.images).status_code == 200
    yield relay, app


def _state(relay: RelayService, world: RelayWorld) -> Any:
    tasks = [relay.task(task.task_id) for task in (world.aborted, world.succeeded, world.created)]
    images = [relay.storage.get_image(world.succeeded.task_id, i) for i in range(4)]
    return tasks, images, relay.storage.block_cursor()


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz(target: tuple[RelayService, Any], world: RelayWorld, label: str) -> None:
    relay, app = target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    before = _state(relay, world)

    @given(case=cases)
    @settings(
        max_examples=30,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        response = case.call()
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        if response.status_code == 400:  # always the protocol's shape, naming a field
            body = response.json()
            assert body["message"] == "validation_error" and body["data"]["field_name"], response.text
        if response.status_code != 200:
            assert _state(relay, world) == before, case.as_curl_command()

    fuzz()
