"""JSON-RPC calls per second over WebSocket against the floor of the same calls over
HTTP (keep-alive), on one in-process endpoint on loopback, one call at a time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.sync.client import connect

from bench.measure import Figure
from hydrogen_harness.fakes.relay import serve_relay
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import deploy
from hydrogen_harness.jsonrpc.dev import DevClock
from hydrogen_harness.jsonrpc.methods import EthRpc
from hydrogen_harness.jsonrpc.server import create_rpc_app

__all__ = ["bench_rpc_ws"]

TOTAL_TASKS = "0xd22c81e5"  # Task.totalTasks(): a view every app calls


def _rate(call: Callable[[dict[str, Any]], dict[str, Any]], method: str, params: list[Any], calls: int) -> float:
    began = time.perf_counter()
    for number in range(calls):
        answer = call({"jsonrpc": "2.0", "id": number, "method": method, "params": params})
        assert "result" in answer, answer
    return calls / (time.perf_counter() - began)


def bench_rpc_ws(quick: bool = False) -> dict[str, Any]:
    """calls/s of eth_blockNumber and eth_call over WebSocket and over HTTP, and their ratios."""
    runs = 2 if quick else 3
    calls = 200 if quick else 1000
    clock = DevClock()
    chain = Chain.in_memory(seed=7, wall_clock=clock.now)
    contracts = deploy(chain)
    rpc = EthRpc(chain, lock=threading.RLock(), clock=clock)
    eth_call = [{"to": contracts.task.address, "data": TOTAL_TASKS}, "latest"]
    samples: dict[str, list[float]] = {}
    with serve_relay(create_rpc_app(rpc)) as running, httpx.Client(timeout=10) as http:
        with connect(running.url.replace("http://", "ws://"), max_size=None) as socket:

            def over_ws(message: dict[str, Any]) -> dict[str, Any]:
                socket.send(json.dumps(message))
                answer: dict[str, Any] = json.loads(socket.recv())
                return answer

            def over_http(message: dict[str, Any]) -> dict[str, Any]:
                answer: dict[str, Any] = http.post(running.url, json=message).json()
                return answer

            for warm_up in (over_ws, over_http):
                _rate(warm_up, "eth_blockNumber", [], 20)  # connections open, caches filled
            for _ in range(runs):  # interleaved, so both transports share the machine's noise
                for transport, call in (("ws", over_ws), ("http", over_http)):
                    samples.setdefault(f"{transport}_eth_blockNumber_per_s", []).append(_rate(call, "eth_blockNumber", [], calls))
                    samples.setdefault(f"{transport}_eth_call_per_s", []).append(_rate(call, "eth_call", eth_call, calls // 2))
    figures = {name: Figure.median_of(name, "calls/s", values) for name, values in samples.items()}
    ratios = {
        method: round(figures[f"ws_{method}_per_s"].value / figures[f"http_{method}_per_s"].value, 3)
        for method in ("eth_blockNumber", "eth_call")
    }
    return {
        **{name: figure.as_json() for name, figure in figures.items()},
        "ws_over_http": ratios,
        "target": {
            "what": "eth_blockNumber calls/s over WebSocket >= 1 x over HTTP",
            "ratio": ratios["eth_blockNumber"],
            "holds": ratios["eth_blockNumber"] >= 1.0,
        },
    }


if __name__ == "__main__":
    print(json.dumps(bench_rpc_ws(quick=True), indent=2))
