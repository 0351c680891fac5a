"""Sandbox figures: start-up seconds, JSON-RPC calls and Relay downloads per second
over loopback, with the sandbox run as a developer runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from hydrogen_harness.client.relay import RelayClient

__all__ = ["bench_sandbox"]

ROOT = Path(__file__).resolve().parent.parent


def _start(state: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any], float]:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "hydrogen_harness.cli", "sandbox", "--rpc-port", "0", "--relay-port", "0", "--dashboard-port", "0", "--state", str(state), "--nodes", "3"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    info_path = state / "sandbox.json"
    while not info_path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with code {process.returncode}")
        if time.perf_counter() - began > 120:
            process.kill()
            raise TimeoutError("the sandbox did not start within 120 s")
        time.sleep(0.02)
    info = json.loads(info_path.read_text())
    with httpx.Client(timeout=5) as http:
        http.post(info["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    return process, info, time.perf_counter() - began


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _rpc_rate(url: str, method: str, params: list[Any], calls: int) -> float:
    with httpx.Client(timeout=10) as http:
        began = time.perf_counter()
        for number in range(calls):
            answer = http.post(url, json={"jsonrpc": "2.0", "id": number, "method": method, "params": params}).json()
            assert "result" in answer, answer
        return calls / (time.perf_counter() - began)


def _download_rate(info: dict[str, Any], state: Path, downloads: int) -> float:
    example = subprocess.run(
        [sys.executable, "examples/app_workflow.py", "--sandbox", str(state / "sandbox.json"), "--out", str(state / "images"), "--images", "1", "--size", "512", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if example.returncode != 0:
        raise RuntimeError(f"the example application failed: {example.stderr[-500:]}")
    task_id = int(json.loads(example.stdout)["task_id"])
    app = Account.from_key(info["app"]["private_key"])
    with RelayClient(info["relay_url"], clock=lambda: int(time.time())) as relay:
        began = time.perf_counter()
        for _ in range(downloads):
            relay.download_result(app, task_id, 0)
        return downloads / (time.perf_counter() - began)


def bench_sandbox(quick: bool = False) -> dict[str, Any]:
    runs = 2 if quick else 3
    startups: list[float] = []
    rpc_block: list[float] = []
    rpc_call: list[float] = []
    downloads: list[float] = []
    calls = 200 if quick else 1000
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            state = Path(folder)
            process, info, seconds = _start(state)
            try:
                startups.append(seconds)
                rpc_block.append(_rpc_rate(info["rpc_url"], "eth_blockNumber", [], calls))
                call = {"to": info["contracts"]["task"], "data": "0xd22c81e5"}  # totalTasks()
                rpc_call.append(_rpc_rate(info["rpc_url"], "eth_call", [call, "latest"], calls // 2))
                downloads.append(_download_rate(info, state, calls // 5))
            finally:
                _stop(process)
    return {
        "startup_seconds": {"value": round(statistics.median(startups), 3), "unit": "s", "runs": [round(s, 3) for s in startups]},
        "rpc_eth_blockNumber_per_s": {"value": round(statistics.median(rpc_block), 1), "unit": "calls/s", "runs": [round(r, 1) for r in rpc_block]},
        "rpc_eth_call_per_s": {"value": round(statistics.median(rpc_call), 1), "unit": "calls/s", "runs": [round(r, 1) for r in rpc_call]},
        "relay_downloads_per_s": {"value": round(statistics.median(downloads), 1), "unit": "downloads/s", "runs": [round(r, 1) for r in downloads]},
        "cpus": os.cpu_count(),
    }
