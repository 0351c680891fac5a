"""An ethers v6 application with ethers' defaults (js/app.mjs) against the sandbox, in-memory
and on anvil: default gas estimation, contract.on("TaskSuccess"), a NonceManager with
several transactions in flight, over HTTP with and without JSON-RPC batching, and over a
WebSocketProvider. Out-of-gas transactions, lost or repeated events and refused nonces
must all be zero, and every task must end with its images downloaded.

Tasks per run: HYDROGEN_CLIENT_TASKS (20 for the full run, as issue 11 asks), else 6, two
waves of three in flight, to keep the default suite short on a 2-core machine.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.sandbox.core import Sandbox
from tests.clients.conftest import NodeApp, client_tasks

IN_FLIGHT = 3  # createTask calls sent at once (plus the wave's approve)
POLLING_MS = 250  # ethers' default is 4000 ms; the same requests come, only sooner
SECONDS_PER_TASK = 10.0  # the bound on a run: generous for a loaded 2-core machine
VARIANTS = [
    pytest.param("http", True, id="http-batching"),
    pytest.param("http", False, id="http-no-batching"),
    pytest.param("ws", True, id="websocket"),
]

SEEDS = {("http", True): 1000, ("http", False): 2000, ("ws", True): 3000}  # distinct prompts per variant


def has_websocket_endpoint() -> bool:
    """Our endpoint serves WebSocket once hydrogen_harness.jsonrpc.ws exists (anvil always does)."""
    return importlib.util.find_spec("hydrogen_harness.jsonrpc.ws") is not None


def run_app(node_app: NodeApp, sandbox: Sandbox, transport: str, batching: bool) -> dict[str, Any]:
    info = sandbox.info
    tasks = client_tasks(default=6)
    config = {
        "rpc_url": info["rpc_url"],
        "ws_url": "ws://" + info["rpc_url"].split("://", 1)[1],  # the same port, as on anvil and geth
        "relay_url": info["relay_url"],
        "contracts": info["contracts"],
        "abi": info["abi"],
        "app_key": info["app"]["private_key"],
        "tasks": tasks,
        "in_flight": IN_FLIGHT,
        "transport": transport,
        "batching": batching,
        "polling_ms": POLLING_MS,
        "timeout_s": SECONDS_PER_TASK * tasks,
        "first_seed": SEEDS[transport, batching],
    }
    result = node_app.run(config, timeout=SECONDS_PER_TASK * tasks + 60)
    result["tasks"] = tasks
    return result


def assert_clean_run(result: dict[str, Any]) -> None:
    counts = {k: result[k] for k in ("out_of_gas", "refused_nonces", "lost_events", "repeated_events", "reverted", "aborted")}
    summary = f"{counts}, {result['succeeded']}/{result['tasks']} tasks in {result['seconds']} s; errors: {result['errors']}"
    assert counts == dict.fromkeys(counts, 0), summary
    assert result["errors"] == [], summary
    assert result["succeeded"] == result["tasks_created"] == result["tasks"], summary
    assert result["images"] == result["tasks"], summary  # one image per task


@pytest.mark.slow
@pytest.mark.parametrize(("transport", "batching"), VARIANTS)
def test_ethers_app_on_the_in_memory_sandbox(
    node_app: NodeApp, fresh_sandbox: Callable[[bool], Sandbox], transport: str, batching: bool
) -> None:
    if transport == "ws" and not has_websocket_endpoint():
        pytest.skip("the sandbox has no WebSocket endpoint yet (harness/rpc_ws.py)")
    assert_clean_run(run_app(node_app, fresh_sandbox(False), transport, batching))


@pytest.mark.slow
@pytest.mark.parametrize(("transport", "batching"), VARIANTS)
def test_ethers_app_on_anvil(node_app: NodeApp, fresh_sandbox: Callable[[bool], Sandbox], transport: str, batching: bool) -> None:
    assert_clean_run(run_app(node_app, fresh_sandbox(True), transport, batching))


@pytest.mark.parametrize("chain", ["in-memory", "anvil"])
def test_the_sandbox_mines_blocks_while_idle(request: pytest.FixtureRequest, chain: str) -> None:
    """An idle sandbox chain still makes blocks (automine plus a block a second: issue 11's
    default mode), on anvil too. ethers' tx.wait() needs a block after the one that holds
    the transaction when its cached block number lagged behind the receipt: on a chain
    that only mines on demand, an app whose last transaction is in flight waits forever
    (the --anvil runs of the ethers app hung that way)."""
    sandbox: Sandbox = request.getfixturevalue("in_memory_sandbox" if chain == "in-memory" else "anvil_sandbox")
    rpc_url = sandbox.info["rpc_url"]

    def head() -> int:
        answer = httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}, timeout=10, verify=shared_tls_context())
        return int(answer.json()["result"], 16)

    start = head()
    deadline = time.monotonic() + 5.0  # five times the sandbox's one-second block time
    while head() == start and time.monotonic() < deadline:
        time.sleep(0.1)  # polling interval of a bounded wait
    assert head() > start, f"{chain}: no block in 5 s on an idle chain (head stayed at {start})"


def test_an_idle_sandbox_comes_back_to_the_wall_clock(in_memory_sandbox: Sandbox) -> None:
    """After a burst has pushed the head ahead of the wall clock (at most 5 s: one block a
    second), a quiet chain comes back to wall time, as a node that mines at the clock's
    time does. Interval blocks stamped a second after their parent would keep the lead
    forever (bench/rpc_clients.py measures both)."""
    rpc_url = in_memory_sandbox.info["rpc_url"]

    def lead() -> float:
        answer = httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]}, timeout=10, verify=shared_tls_context())
        return int(answer.json()["result"]["timestamp"], 16) - time.time()

    for _ in range(8):  # eight blocks in a row, each a second after the last
        in_memory_sandbox.new_wallet(cnx=0, eth=1)
    burst = lead()
    assert burst > 2, f"the burst did not put the head ahead ({burst:.2f} s): nothing to measure"
    deadline = time.monotonic() + burst + 5.0  # the lead, then a few interval blocks more
    while lead() > 1.0 and time.monotonic() < deadline:
        time.sleep(0.2)  # polling interval of a bounded wait
    assert lead() <= 1.0, f"the head stayed {lead():.2f} s ahead of the wall clock while idle (it was {burst:.2f} s after the burst)"
