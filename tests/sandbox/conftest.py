"""Fixtures of the sandbox tests: an in-process JSON-RPC endpoint, and sandboxes run
as subprocesses exactly as a developer starts them (`python -m hydrogen_harness.cli sandbox`)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
from web3 import Web3

from hydrogen_harness.fakes.relay import serve_relay
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.jsonrpc.dev import DevClock
from hydrogen_harness.jsonrpc.methods import EthRpc
from hydrogen_harness.jsonrpc.server import create_rpc_app

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
STARTUP_TIMEOUT = 60.0  # a loaded 2-core CI machine imports web3 and friends slowly
STOP_TIMEOUT = 5.0


# ---------------------------------------------------------------- in process


@dataclass
class ServedChain:
    chain: Chain
    contracts: Deployment
    rpc: EthRpc
    clock: DevClock
    url: str
    w3: Web3


@pytest.fixture
def served_chain() -> Iterator[ServedChain]:
    """The in-memory chain with the contracts, served over HTTP on a free loopback port."""
    clock = DevClock(offset=-60)  # set-up blocks in the recent past, as the sandbox stamps them
    lock = threading.RLock()
    chain = Chain.in_memory(seed=7, wall_clock=clock.now)
    contracts = deploy(chain)
    clock.advance(60)
    rpc = EthRpc(chain, lock=lock, clock=clock)
    try:
        with serve_relay(create_rpc_app(rpc)) as running:
            yield ServedChain(chain, contracts, rpc, clock, running.url, Web3(Web3.HTTPProvider(running.url)))
    finally:
        rpc.close()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` in a thread of its own: the test's thread may already run an event
    loop (Playwright's sync API keeps one while a browser is open)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def main() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=main, name="test-event-loop")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


# ---------------------------------------------------------------- the example application


@pytest.fixture(scope="session")
def example() -> ModuleType:
    """examples/app_workflow.py, imported from its file (it is not part of the package)."""
    path = ROOT / "examples" / "app_workflow.py"
    spec = importlib.util.spec_from_file_location("app_workflow", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- subprocesses


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class SandboxProcess:
    process: subprocess.Popen[bytes]
    state: Path
    log_path: Path
    info: dict[str, Any]
    started_in: float

    @property
    def info_path(self) -> Path:
        return self.state / "sandbox.json"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, float]:
        """Send `sig`; returns (exit code, seconds it took to exit)."""
        began = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the sandbox did not stop within {STOP_TIMEOUT + 5} s:\n{self.log()}") from None
        return code, time.monotonic() - began


def start_sandbox(state: Path, *args: str) -> SandboxProcess:
    """Start `hydrogen-harness sandbox` on free ports; wait for its sandbox.json and ports."""
    state.mkdir(parents=True, exist_ok=True)
    log_path = state / f"sandbox-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "hydrogen_harness.cli", "sandbox", "--rpc-port", "0", "--relay-port", "0", "--dashboard-port", "0", "--state", str(state), *args]
    began = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    running = SandboxProcess(process, state, log_path, {}, 0.0)
    deadline = began + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the sandbox exited with {process.returncode}:\n{running.log()}")
        try:
            info = json.loads(running.info_path.read_text())
        except (OSError, ValueError):
            info = {}
        # A restart finds the previous run's file: wait for this process's own.
        if info.get("pid") == process.pid and port_open(info["rpc_url"]) and port_open(info["relay_url"]):
            running.info = info
            running.started_in = time.monotonic() - began
            return running
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"the sandbox was not up within {STARTUP_TIMEOUT} s:\n{running.log()}")


@pytest.fixture
def sandboxes() -> Iterator[list[SandboxProcess]]:
    """Sandboxes a test starts go here; any still running at the end are stopped."""
    started: list[SandboxProcess] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
