"""The dashboard's update latency: seconds from a block being mined to the dashboard's
server-sent event for it reaching a client, against the floor of the chain's own
`eth_subscribe("newHeads")` notification of the same block over WebSocket.

One in-memory sandbox (3 honest nodes, the dashboard on a free port), a client on each
stream, and every block mined during the run timed from the miner's feed: first with
the network idle (blocks mined by `evm_mine` calls and the idle miner), then while an
application runs tasks (each block then carries transactions the dashboard must read:
events, transfers, node statuses).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions

__all__ = ["bench_dashboard"]

ROOT = Path(__file__).resolve().parent.parent
ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 2, "image_width": 128, "image_height": 128}}  # fmt: skip


class _Clocked:
    """perf_counter() at which each block number was first seen by one observer."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self._lock = threading.Lock()

    def note(self, block: int) -> None:
        now = time.perf_counter()
        with self._lock:
            self.seen.setdefault(block, now)

    def note_up_to(self, block: int, known: set[int]) -> None:
        """A snapshot at `block` covers every block mined before it that had none yet."""
        now = time.perf_counter()
        with self._lock:
            for number in known:
                if number <= block:
                    self.seen.setdefault(number, now)


def _quietly(follow: Any) -> Any:
    """A follower thread that ends without a traceback when the sandbox goes away."""

    def run(*args: Any) -> None:
        try:
            follow(*args)
        except Exception:  # the server closed the stream at shutdown
            pass

    return run


def _follow_dashboard(url: str, clocked: _Clocked, mined: _Clocked, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=5)) as client:
        with client.stream("GET", "/api/events") as stream:
            for line in stream.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("data: "):
                    block = json.loads(line.removeprefix("data: "))["network"]["block"]
                    clocked.note_up_to(block, set(mined.seen))


def _follow_heads(ws_url: str, clocked: _Clocked, stop: threading.Event) -> None:
    with connect(ws_url, max_size=None) as socket:
        socket.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        json.loads(socket.recv())
        while not stop.is_set():
            try:
                message = json.loads(socket.recv(timeout=0.5))
            except TimeoutError:
                continue
            clocked.note(int(message["params"]["result"]["number"], 16))


def _figure(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "value": round(statistics.median(samples) * 1000, 2),
        "unit": "ms",
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
        "blocks": len(samples),
    }


def _latencies(mined: _Clocked, seen: _Clocked, blocks: set[int]) -> list[float]:
    return [seen.seen[n] - mined.seen[n] for n in sorted(blocks) if n in seen.seen and n in mined.seen]


def bench_dashboard(quick: bool = False) -> dict[str, Any]:
    """Median, p90 and max milliseconds from a block mined to its dashboard event, idle and
    under tasks, with the newHeads floor and the ratio of the medians."""
    idle_blocks = 10 if quick else 40
    tasks = 2 if quick else 6
    with tempfile.TemporaryDirectory() as folder:
        options = dataclasses.replace(SandboxOptions.for_tests(Path(folder), ["honest"] * 3), dashboard_port=0)
        with Sandbox(options, log=lambda line: None) as sandbox:
            assert sandbox._rpc is not None
            sandbox.use_nodes(["honest"] * 3)
            mined, dashboard, heads = _Clocked(), _Clocked(), _Clocked()
            unsubscribe = sandbox._rpc.feed.on_block(mined.note)
            stop = threading.Event()
            followers = [
                threading.Thread(target=_quietly(_follow_dashboard), args=(sandbox.info["dashboard_url"], dashboard, mined, stop), daemon=True),
                threading.Thread(target=_quietly(_follow_heads), args=(sandbox.ws_url, heads, stop), daemon=True),
            ]
            for follower in followers:
                follower.start()
            time.sleep(1.0)  # both streams connected, the first snapshot sent
            phases: dict[str, set[int]] = {}

            start = len(mined.seen)
            with httpx.Client(timeout=10) as rpc:
                for number in range(idle_blocks):
                    rpc.post(sandbox.rpc_url, json={"jsonrpc": "2.0", "id": number, "method": "evm_mine", "params": []})
                    time.sleep(0.3)
            time.sleep(1.0)
            phases["idle"] = set(sorted(mined.seen)[start:])

            sys.path.insert(0, str(ROOT / "examples" / "cnx_app"))
            try:
                from cnx_app import CnxApp  # an application written for the real network
            finally:
                sys.path.remove(str(ROOT / "examples" / "cnx_app"))
            wallet = sandbox.new_wallet(cnx=1_000 * CNX)
            start = len(mined.seen)
            with CnxApp(sandbox.rpc_url, sandbox.relay_url, sandbox.addresses["token"], sandbox.addresses["task"], wallet.key, poll=0.05) as app:
                for number in range(tasks):
                    report = app.run({**ARGS, "prompt": f"task {number}"})
                    assert report.outcome == "success", report
            sandbox.wait_until_idle()
            time.sleep(1.0)
            phases["tasks"] = set(sorted(mined.seen)[start:])
            refresh = sandbox_refresh_seconds(sandbox)
            stop.set()
            unsubscribe()
    figures: dict[str, Any] = {}
    for phase, blocks in phases.items():
        ours, floor = _latencies(mined, dashboard, blocks), _latencies(mined, heads, blocks)
        figures[f"{phase}_dashboard"] = _figure(ours)
        figures[f"{phase}_newheads_floor"] = _figure(floor)
        figures[f"{phase}_missed_blocks"] = len(blocks) - len(ours)
    figures["refresh_ms"] = round(refresh * 1000, 2)
    worst = max(figures["idle_dashboard"]["max"], figures["tasks_dashboard"]["max"])
    ratio = figures["tasks_dashboard"]["value"] / max(figures["tasks_newheads_floor"]["value"], 0.01)
    figures["target"] = {
        "what": "a block reaches the dashboard's clients within 1 s (max over every block mined)",
        "ratio_to_newheads": round(ratio, 2),
        "holds": worst < 1000 and figures["idle_missed_blocks"] == figures["tasks_missed_blocks"] == 0,
    }
    return figures


def sandbox_refresh_seconds(sandbox: Sandbox, runs: int = 5) -> float:
    """Median seconds of one snapshot of a sandbox with history (GET /api/state)."""
    samples = []
    with httpx.Client(base_url=sandbox.info["dashboard_url"], timeout=30) as client:
        for _ in range(runs):
            began = time.perf_counter()
            client.get("/api/state").raise_for_status()
            samples.append(time.perf_counter() - began)
    return statistics.median(samples)


if __name__ == "__main__":
    print(json.dumps(bench_dashboard("--quick" in sys.argv), indent=2))
