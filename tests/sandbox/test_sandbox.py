"""`hydrogen-harness sandbox` as a developer runs it: a subprocess on loopback ports,
driven by examples/app_workflow.py over real HTTP."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PIL import Image
from web3 import Web3

from hydrogen_harness.protocol.phash import result_bytes
from hydrogen_harness.protocol.constants import CNX
from tests.sandbox.conftest import (
    ROOT,
    STOP_TIMEOUT,
    SandboxProcess,
    port_open,
    start_sandbox,
)

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(example: ModuleType, running: SandboxProcess, out: Path, *extra: str) -> dict[str, Any]:
    """The example application, in this process (it still talks to the sandbox over sockets)."""
    argv = ["--sandbox", str(running.info_path), "--out", str(out), "--size", "256", "--quiet", "--timeout", "60", *extra]
    options = example.parse_options(argv)
    report: dict[str, Any] = example.run(options)
    return report


def on_chain_outcome(info: dict[str, Any], task_id: int) -> dict[str, Any]:
    """TaskSuccess/TaskAborted of a task, read independently of the example."""
    w3 = Web3(Web3.HTTPProvider(info["rpc_url"]))
    task = w3.eth.contract(address=info["contracts"]["task"], abi=info["abi"]["task"])
    for name in ("TaskSuccess", "TaskAborted"):
        for entry in getattr(task.events, name)().get_logs(from_block=0):
            if entry["args"]["taskId"] == task_id:
                return {"event": name, **dict(entry["args"])}
    raise AssertionError(f"no outcome on chain for task {task_id}")


def assert_clean_stop(running: SandboxProcess, sig: int) -> None:
    code, took = running.stop(sig)
    assert code == 0, running.log()
    assert took < STOP_TIMEOUT, f"stopping took {took:.1f} s"
    assert not port_open(running.info["rpc_url"]) and not port_open(running.info["relay_url"])


def test_workflow_clean_stop_and_restart_keep_the_uploads(tmp_path: Path, sandboxes: list[SandboxProcess], example: ModuleType) -> None:
    state = tmp_path / "state"
    first = start_sandbox(state, "--nodes", "4")
    sandboxes.append(first)

    # The example exactly as a developer runs it: its own process, its own CLI.
    out = tmp_path / "images"
    script = ROOT / "examples" / "app_workflow.py"
    command = [sys.executable, str(script), "--sandbox", str(first.info_path), "--out", str(out), "--size", "256", "--quiet"]
    done = subprocess.run(command, capture_output=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    report = json.loads(done.stdout.decode().splitlines()[-1])

    images = [Path(path).read_bytes() for path in report["images"]]
    assert len(images) == 2
    for image in images:
        assert image.startswith(PNG_SIGNATURE)
        Image.open(io.BytesIO(image)).verify()
    success = on_chain_outcome(first.info, report["task_id"])
    assert success["event"] == "TaskSuccess"
    assert result_bytes(images) == bytes(success["result"]) == bytes.fromhex(report["result"][2:])
    assert report["cnx_before"] - report["cnx_after"] == 30 * CNX
    assert f"task {report['task_id']}: success" in first.log()

    assert_clean_stop(first, signal.SIGINT)

    second = start_sandbox(state, "--nodes", "4")
    sandboxes.append(second)
    assert "chain rebuilt" in second.log() and "contracts reused" in second.log()
    assert second.info["contracts"] == first.info["contracts"]
    app = example.App(second.info, log=False)
    assert app.outcome(report["task_id"], report["create_block"])["event"] == "TaskSuccess"
    assert [app.download(report["task_id"], i, timeout=10) for i in range(2)] == images
    assert_clean_stop(second, signal.SIGTERM)


def test_abort_when_every_node_reports_an_error(tmp_path: Path, sandboxes: list[SandboxProcess], example: ModuleType) -> None:
    running = start_sandbox(tmp_path / "state", "--nodes", "3", "--behaviours", "error,error,error")
    sandboxes.append(running)
    report = run_example(example, running, tmp_path / "images")
    assert (report["outcome"], report["reason"]) == ("aborted", "Task error reported")
    assert on_chain_outcome(running.info, report["task_id"])["reason"] == "Task error reported"
    assert f"task {report['task_id']}: aborted: Task error reported" in running.log()
    assert_clean_stop(running, signal.SIGINT)


def test_timeout_then_cancel_refunds_the_app(tmp_path: Path, sandboxes: list[SandboxProcess], example: ModuleType) -> None:
    running = start_sandbox(tmp_path / "state", "--nodes", "3", "--behaviours", "offline,offline,offline")
    sandboxes.append(running)
    report = run_example(example, running, tmp_path / "images", "--cancel-after-timeout", "--wait", "1")
    assert (report["outcome"], report["reason"]) == ("cancelled", "Task Cancelled")
    w3 = Web3(Web3.HTTPProvider(running.info["rpc_url"]))
    token = w3.eth.contract(address=running.info["contracts"]["token"], abi=running.info["abi"]["token"])
    assert token.functions.balanceOf(running.info["app"]["address"]).call() == report["cnx_before"] == report["cnx_after"]
    created = w3.eth.get_block(report["create_block"])["timestamp"]
    assert w3.eth.get_block("latest")["timestamp"] > created + 900  # evm_increaseTime moved the chain's clock
    assert_clean_stop(running, signal.SIGINT)
