"""The dashboard of a sandbox on anvil: no block feed there, so it polls the chain's
head, and its history (slashes, balances) is read over JSON-RPC."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions
from hydrogen_harness.sandbox.anvil import ANVIL_VERSION, find_anvil
from tests.dashboard.conftest import ARGS, new_app
from tests.dashboard.test_api import events


@pytest.fixture(scope="module")
def anvil_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if find_anvil() is None:
        pytest.skip(f"anvil not found (npm install --prefix .cache/anvil @foundry-rs/anvil-linux-amd64@{ANVIL_VERSION})")
    options = SandboxOptions.for_tests(Path(tmp_path_factory.mktemp("dashboard-anvil")), ["honest", "honest", "cheater"])
    options = dataclasses.replace(options, anvil=True, tick=0.1, dashboard_port=0)
    with Sandbox(options, log=lambda line: None) as sandbox:
        yield sandbox


def test_the_dashboard_follows_a_task_on_anvil(anvil_sandbox: Sandbox) -> None:
    sandbox = anvil_sandbox
    with sandbox.isolated(["honest", "honest", "cheater"]), httpx.Client(base_url=sandbox.info["dashboard_url"], timeout=30) as api:
        stream = events(api)
        assert next(stream)["network"]["chain"] == "anvil"
        report = new_app(sandbox).run(ARGS)
        assert report.outcome == "success" and sandbox.wait_until_idle()
        deadline = time.monotonic() + 15
        while True:  # the poller sees the blocks of the task, the last one with the fee of the upload
            state = next(stream)
            task = next((t for t in state["tasks"] if t["id"] == report.task_id), None)
            if task is not None and task["images"] == len(report.images) and not task["on_chain"]:
                break
            assert time.monotonic() < deadline, state["tasks"]
        assert task["status"] == "success" and len(task["slashed"]) == 1
        cheater = next(n for n in state["nodes"] if n["behaviour"] == "cheater")
        assert cheater["status"] == "quit" and int(cheater["slashed"]) == STAKE_AMOUNT
        assert cheater["slashed_in"] == [report.task_id] and task["slashed"] == [cheater["address"]]
        deployment = sandbox._deployed()
        block = state["network"]["block"]  # the chain as the page saw it: a later block may pay more
        for node in state["nodes"]:
            on_chain = deployment.token.contract.functions.balanceOf(node["address"]).call(block_identifier=block)
            assert int(node["balance"]) == on_chain
        assert sum(int(n["earned"]) for n in state["nodes"]) == 20 * CNX
        assert api.get(f"/api/tasks/{report.task_id}/images/0").content == report.images[0]
        stream.close()
