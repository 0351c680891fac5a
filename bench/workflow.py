"""Workflow throughput: full tasks through the simulated network, against the floor
of the same transactions sent bare through web3 to the same kind of chain; the same
workflow on revm against eth-tester; and where a task's time goes on revm."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eth_account.signers.local import LocalAccount

from bench.measure import Figure
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import deploy
from hydrogen_harness.sim.network import Network
from hydrogen_harness.protocol.constants import CNX, commitment_of

__all__ = ["bench_backends", "bench_workflow", "fresh_args", "time_shares"]

ARGS: dict[str, Any] = {
    "base_model": "runwayml/stable-diffusion-v1-5",
    "prompt": "bench",
    "task_config": {"num_images": 1, "image_width": 64, "image_height": 64},
}

# The generator and the perceptual hash remember recent images: each task of a bench
# process gets a prompt of its own, so that no run finds its images already painted
# and hashed by an earlier run (another backend's, or another section's).
_PROMPT_NUMBERS = itertools.count()


def fresh_args() -> dict[str, Any]:
    """ARGS with a prompt that no other task of this process had."""
    return {**ARGS, "prompt": f"bench {next(_PROMPT_NUMBERS)}"}


def _workflow_run(network: Network, tasks: int) -> tuple[int, int, float]:
    app = network.apps[0]
    first_block = network.chain.block_number
    start = time.perf_counter()
    for _ in range(tasks):
        key = app.submit(fresh_args())
        network.settle()
        assert app.store.jobs[key].phase.value == "completed", app.store.jobs[key]
    seconds = time.perf_counter() - start
    return tasks, network.chain.block_number - first_block, seconds


def _bare_run(tasks: int, offset: int, state: dict[str, Any]) -> tuple[int, int, float]:
    """approve, createTask, 3 commits, 3 disclosures, report: web3 and nothing else."""
    chain: Chain = state["chain"]
    w3 = chain.w3
    token, task = state["token"], state["task"]
    app: LocalAccount = state["app"]
    nodes: dict[str, LocalAccount] = state["nodes"]
    nonces: dict[str, int] = state["nonces"]
    created_topic = state["created_topic"]

    def send(account: LocalAccount, to: str, data: str) -> Any:
        tx: dict[str, Any] = {
            "chainId": chain.chain_id,
            "nonce": nonces[account.address],
            "gas": 1_500_000,
            "maxFeePerGas": 10**9,
            "maxPriorityFeePerGas": 0,
            "to": to,
            "value": 0,
            "data": data,
        }
        nonces[account.address] += 1
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt

    first_block = chain.block_number
    start = time.perf_counter()
    result = bytes(8)
    for i in range(tasks):
        send(app, token.address, token.encode_abi("approve", [task.address, 30 * CNX]))
        receipt = send(app, task.address, task.encode_abi("createTask", [(offset + i).to_bytes(32, "big"), bytes(32)]))
        created = [log for log in receipt["logs"] if bytes(log["topics"][0]) == created_topic]
        task_id = int.from_bytes(bytes(created[0]["data"])[:32], "big")
        selected = ["0x" + bytes(log["topics"][2])[-20:].hex() for log in created]
        accounts = [nodes[a.lower()] for a in selected]
        for round_, account in enumerate(accounts):
            nonce = (offset * 10 + i * 3 + round_ + 1).to_bytes(32, "big")
            send(account, task.address, task.encode_abi("submitTaskResultCommitment", [task_id, round_, commitment_of(result, nonce), nonce]))
        for round_, account in enumerate(accounts):
            send(account, task.address, task.encode_abi("discloseTaskResult", [task_id, round_, result]))
        send(accounts[0], task.address, task.encode_abi("reportResultsUploaded", [task_id, 0]))
    seconds = time.perf_counter() - start
    return tasks, chain.block_number - first_block, seconds


def _bare_state() -> dict[str, Any]:
    chain = Chain.in_memory(seed=1)
    deployment = deploy(chain)
    nodes = [deployment.new_node() for _ in range(3)]
    app = deployment.new_app(cnx=10**6 * CNX)
    w3 = chain.w3
    accounts = [app, *nodes]
    return {
        "chain": chain,
        "token": deployment.token.contract,
        "task": deployment.task.contract,
        "app": app,
        "nodes": {n.address.lower(): n for n in nodes},
        "nonces": {a.address: w3.eth.get_transaction_count(a.address) for a in accounts},
        "created_topic": deployment.task.codec.topics["TaskCreated"],
    }


def bench_workflow(tasks: int = 10, repeats: int = 3) -> dict[str, Figure]:
    network = Network(seed=1, nodes=["honest"] * 3)
    network.add_app(cnx=10**6 * CNX)
    _workflow_run(network, 1)  # warm-up: imports, caches, first compile
    bare = _bare_state()
    _bare_run(1, 10**6, bare)

    workflow_runs: list[tuple[int, int, float]] = []
    bare_runs: list[tuple[int, int, float]] = []
    for repeat in range(repeats):
        # Interleaved, so that machine load hits both sides alike.
        workflow_runs.append(_workflow_run(network, tasks))
        bare_runs.append(_bare_run(tasks, repeat * tasks, bare))

    def rates(runs: list[tuple[int, int, float]], index: int) -> list[float]:
        return [run[index] / run[2] for run in runs]

    return {
        "workflow_tasks_per_s": Figure.median_of("workflow: tasks per second", "tasks/s", rates(workflow_runs, 0)),
        "workflow_tx_per_s": Figure.median_of("workflow: transactions per second", "tx/s", rates(workflow_runs, 1)),
        "bare_tasks_per_s": Figure.median_of("floor, bare web3: tasks per second", "tasks/s", rates(bare_runs, 0)),
        "bare_tx_per_s": Figure.median_of("floor, bare web3: transactions per second", "tx/s", rates(bare_runs, 1)),
    }


def _network(backend: str, seed: int = 1) -> Network:
    chain = Chain.revm(seed=seed) if backend == "revm" else Chain.in_memory(seed=seed)
    network = Network(seed=seed, nodes=["honest"] * 3, chain=chain)
    network.add_app(cnx=10**6 * CNX)
    _workflow_run(network, 1)  # warm-up: imports, caches, first compile
    return network


def bench_backends(pairs: int = 6, tester_tasks: int = 3, revm_tasks: int = 15) -> dict[str, Any]:
    """Tasks per second of the whole workflow on revm and on eth-tester, measured in
    interleaved pairs (eth-tester batch, revm batch, ...) so that load on the machine
    hits both alike; batches of about the same duration. Reports each pair's ratio."""
    networks = {"eth-tester": _network("eth-tester"), "revm": _network("revm")}
    rates: dict[str, list[float]] = {"eth-tester": [], "revm": []}
    for pair in range(pairs):
        for backend, tasks in (("eth-tester", tester_tasks), ("revm", revm_tasks)):
            done, _, seconds = _workflow_run(networks[backend], tasks)
            rates[backend].append(done / seconds)
    ratios = [revm / tester for revm, tester in zip(rates["revm"], rates["eth-tester"])]
    return {
        "eth_tester_tasks_per_s": Figure.median_of("workflow on eth-tester: tasks per second", "tasks/s", rates["eth-tester"]).as_json(),
        "revm_tasks_per_s": Figure.median_of("workflow on revm: tasks per second", "tasks/s", rates["revm"]).as_json(),
        "revm_over_eth_tester": {
            "pairs": pairs,
            "batch_tasks": {"eth-tester": tester_tasks, "revm": revm_tasks},
            "min": round(min(ratios), 2),
            "median": round(statistics.median(ratios), 2),
            "max": round(max(ratios), 2),
            "runs": [round(r, 2) for r in ratios],
        },
    }


class _Shares:
    """Wall time by category, each moment counted once: a category entered inside
    another (a Relay request reading the chain) pauses the outer one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[tuple[str, float]] = []
        self._wrapped: list[tuple[Any, str, Any]] = []

    @contextmanager
    def charge(self, category: str) -> Iterator[None]:
        now = time.perf_counter()
        if self._stack:
            outer, since = self._stack[-1]
            self.seconds[outer] = self.seconds.get(outer, 0.0) + now - since
        self._stack.append((category, now))
        try:
            yield
        finally:
            end = time.perf_counter()
            _, since = self._stack.pop()
            self.seconds[category] = self.seconds.get(category, 0.0) + end - since
            if self._stack:
                self._stack[-1] = (self._stack[-1][0], end)

    def wrap(self, owner: Any, name: str, category: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.charge(category):
                return inner(*args, **kwargs)

        self._wrapped.append((owner, name, inner))
        setattr(owner, name, timed)

    def unwrap(self) -> None:
        for owner, name, inner in reversed(self._wrapped):
            setattr(owner, name, inner)
        self._wrapped.clear()


def time_shares(backend: str = "revm", tasks: int = 30) -> dict[str, Any]:
    """Where one task's time goes, by part of the simulation (shares of the total)."""
    import hydrogen_harness.chain.chain as chain_module
    import hydrogen_harness.fakes.relay.images as relay_images
    import hydrogen_harness.fakes.node as node_module
    import hydrogen_harness.fakes.relay.service as relay_service

    network = _network(backend)
    shares = _Shares()
    for name in ("send_raw", "call", "logs", "receipt", "wait_receipt", "transaction_input", "head", "block_hash", "block_timestamp"):
        shares.wrap(network.chain.backend, name, "chain backend")
    shares.wrap(chain_module, "sign_transaction", "signing transactions")
    shares.wrap(network.faults, "forward", "Relay over in-process HTTP (requests, threads, handlers)")
    generator = network.generator  # a frozen dataclass: each node gets a timed stand-in

    class TimedGenerator:
        def generate(self, args: Any, index: int) -> bytes:
            with shares.charge("image generation (nodes)"):
                return generator.generate(args, index)

    for node in network.nodes:
        node.generator = TimedGenerator()
    for module in (relay_service, relay_images):
        shares.wrap(module, "phash", "perceptual hashes (Relay)")
    shares.wrap(node_module, "result_bytes", "perceptual hashes (nodes)")
    try:
        with shares.charge("simulation logic (nodes, app, network, bindings)"):
            _, _, seconds = _workflow_run(network, tasks)
    finally:
        shares.unwrap()  # the module functions above are shared with the other sections
    total = sum(shares.seconds.values())
    return {
        "backend": backend,
        "tasks": tasks,
        "ms_per_task": round(1000 * seconds / tasks, 2),
        "shares": {name: round(part / total, 3) for name, part in sorted(shares.seconds.items(), key=lambda kv: -kv[1])},
    }
