"""The same exchange once over a real socket: uvicorn on a free 127.0.0.1 port."""

from __future__ import annotations

import threading

import httpx
import pytest

from hydrogen_harness.fakes.relay import MemoryStorage, RelayService, create_app, serve_relay
from hydrogen_harness.client.relay import RelayClient, RelayTaskStatus, RetryPolicy
from tests.relay.world import RelayWorld


def test_the_whole_exchange_over_loopback(world: RelayWorld) -> None:
    # The lock is what the sandbox shares with the threads that drive the chain.
    service = RelayService(world.history, MemoryStorage(), clock=world.clock, lock=threading.Lock())
    task = world.succeeded
    with serve_relay(create_app(service)) as running:
        assert running.url.startswith("http://127.0.0.1:") and running.port > 0
        # A base URL, as an application pointed at a real Relay would be given.
        with RelayClient(running.url, clock=world.clock, retry=RetryPolicy(attempts=1)) as client:
            assert client.upload_task_args(world.creator, task.task_id, task.args).task_args == task.args
            assert client.get_task(task.nodes[1], task.task_id).status is RelayTaskStatus.PENDING_RESULTS
            client.upload_results(task.nodes[0], task.task_id, task.images)
            assert [client.download_result(world.creator, task.task_id, i) for i in range(3)] == list(task.images)
            refused = httpx.get(f"{running.url}/v1/inference_tasks/x", params={"timestamp": 1, "signature": "0x"})
            assert refused.status_code == 400 and refused.json()["data"]["field_name"] == "task_id"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.url}/openapi.json", timeout=2)
