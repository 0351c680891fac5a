"""createTask's gas check (deviation 5): an eth_estimateGas made in one block is
enough for createTask in any later block.

The gas createTask needs depends on the nodes it picks (the swap-and-pop moves in
Node's list of available nodes), and the pick depends on the parent block's hash.
A client that sends its library's default estimate (ethers v6, web3.py: a binary
search for the lowest gas limit that succeeds, no margin) estimates in one block
and is mined in another. Task asserts, after its view checks, that the gas left
covers the most expensive pick (CREATE_TASK_GAS_NEEDED), so that every limit that
succeeds, an estimate included, is enough for every pick.

py-evm's estimator stops within 21,000 gas of the lowest limit that succeeds; on
the in-memory chain these tests switch it to its exact binary search, tighter
than geth's (1.5%) or anvil's: the strictest client there can be.

The long runs (dozens of tasks, each estimate some 28 runs of createTask) go on
revm, where `lowest_limit` does that exact search with calls in the pending
block; a test on eth-tester checks that it finds what py-evm's eth_estimateGas
finds, and the eth_estimateGas tests stay on eth-tester.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth.estimators.gas import binary_gas_search_exact
from eth_account.signers.local import LocalAccount
from eth_utils import ValidationError, keccak

from hydrogen_harness.chain.rpc import RpcBackend
from hydrogen_harness.chain.determinism import BLOCK_GAS_LIMIT
from hydrogen_harness.chain.tester import TesterBackend
from hydrogen_harness.chain.chain import Chain, RevertError
from hydrogen_harness.chain.compiler import contract_source, sources_dir
from hydrogen_harness.chain.contracts import TASK_GAS, Deployment, deploy
from hydrogen_harness.protocol.events import TaskCreated
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import CNX, ZERO_HASH, NodeStatus
from hydrogen_harness.protocol.reverts import decode_revert

MAX_UINT = 2**256 - 1
INTRINSIC_GAS = 21_000
_NEEDED = re.search(r"^CREATE_TASK_GAS_NEEDED: constant\(uint256\) = ([0-9_]+)$", contract_source("Task"), re.MULTILINE)
assert _NEEDED is not None, "Task.vy has no CREATE_TASK_GAS_NEEDED"
NEEDED = int(_NEEDED.group(1))
# The check, as the control test removes it to get the contract as it was before.
CHECK_LINE = '    assert msg.gas >= CREATE_TASK_GAS_NEEDED, "Not enough gas for task"\n'


@contextlib.contextmanager
def exact_estimates(chain: Chain) -> Iterator[None]:
    """eth_estimateGas on `chain` returns the lowest limit that succeeds, exactly."""
    if isinstance(chain.backend, RpcBackend):
        yield  # the node's own estimator
        return
    if not isinstance(chain.backend, TesterBackend):
        pytest.skip("needs eth_estimateGas and blocks: the in-memory chain or a JSON-RPC node")
    pyevm = chain.backend.pyevm.chain
    stock = pyevm.gas_estimator
    pyevm.gas_estimator = binary_gas_search_exact
    try:
        yield
    finally:
        pyevm.gas_estimator = stock


def _hashes(index: int) -> tuple[bytes, bytes]:
    """Fixed task and data hashes (never the counter of helpers.fresh_hash, so a
    run does not depend on which tests ran before); every fifth dataHash is zero."""
    task_hash = keccak(f"create-task-gas:task:{index}".encode())
    data_hash = ZERO_HASH if index % 5 == 4 else keccak(f"create-task-gas:data:{index}".encode())
    return task_hash, data_hash


def estimate(deployment: Deployment, app: LocalAccount, task_hash: bytes, data_hash: bytes) -> int:
    """eth_estimateGas of createTask through web3, as ethers and web3.py clients do."""
    tx: Any = _create_call(deployment, app, task_hash, data_hash)
    return int(deployment.chain.w3.eth.estimate_gas(tx))


def _create_call(deployment: Deployment, app: LocalAccount, task_hash: bytes, data_hash: bytes) -> dict[str, Any]:
    """createTask from `app` as a call (no gas limit: the estimators set it)."""
    fn = deployment.task.contract.functions.createTask(task_hash, data_hash)
    return {"from": app.address, "to": deployment.task.address, "data": fn._encode_transaction_data()}


def lowest_limit(deployment: Deployment, app: LocalAccount, task_hash: bytes, data_hash: bytes) -> int:
    """The lowest gas limit at which createTask succeeds in the pending block, found
    by calls as py-evm's `binary_gas_search_exact` finds it (success at the block's
    limit, then bisection down to one gas), so on any backend. A limit below the
    call's intrinsic gas fails too (py-evm refuses it, revm halts)."""
    tx = _create_call(deployment, app, task_hash, data_hash)

    def succeeds(gas: int) -> bool:
        try:
            deployment.chain.backend.call({**tx, "gas": gas}, "pending")
        except (RevertError, ValidationError):
            return False
        return True

    if not succeeds(BLOCK_GAS_LIMIT):
        raise AssertionError(f"createTask fails even with the block's gas limit ({BLOCK_GAS_LIMIT})")
    viable, out_of_gas = BLOCK_GAS_LIMIT, INTRINSIC_GAS
    while viable - out_of_gas > 1:
        midpoint = (viable + out_of_gas) // 2
        if succeeds(midpoint):
            viable = midpoint
        else:
            out_of_gas = midpoint
    return viable


def create(deployment: Deployment, app: LocalAccount, task_hash: bytes, data_hash: bytes, gas: int) -> tuple[int, tuple[str, ...], int]:
    """createTask with exactly `gas`: (task id, the picks by round, gas used)."""
    fn = deployment.task.contract.functions.createTask(task_hash, data_hash)
    receipt = deployment.chain.transact(app, fn, gas=gas)
    created = sorted((e for e in deployment.task.events(receipt) if isinstance(e, TaskCreated)), key=lambda e: e.round)
    return created[0].task_id, tuple(e.selected_node for e in created), int(receipt["gasUsed"])


@dataclass
class EstimateThenMine:
    """Tasks created with an estimate made one or more blocks before, while nodes
    join, pause, resume, quit and are freed by cancelled tasks."""

    deployment: Deployment
    apps: list[LocalAccount]
    stop_at_first_failure: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(20231114))
    nodes: list[LocalAccount] = field(default_factory=list)  # every node that joined
    open_tasks: list[tuple[int, LocalAccount]] = field(default_factory=list)
    tasks: int = 0
    available_at_estimate: list[int] = field(default_factory=list)
    estimates: list[int] = field(default_factory=list)
    gas_used: list[int] = field(default_factory=list)
    moved: int = 0  # tasks mined with other picks than the estimate's block would make
    failures: list[str] = field(default_factory=list)
    out_of_gas: int = 0  # failures that used all their gas (no revert string)

    @property
    def done(self) -> bool:
        return self.stop_at_first_failure and bool(self.failures)

    def join(self, count: int) -> None:
        self.nodes += [self.deployment.new_node() for _ in range(count)]

    def with_status(self, status: NodeStatus) -> list[LocalAccount]:
        return [n for n in self.nodes if self.deployment.node.status(n.address) == status]

    def available(self) -> int:
        return self.deployment.node.available_nodes()

    def task(self, app: LocalAccount | None = None) -> None:
        """Estimate in this block, let the chain move on, send with the estimate."""
        if self.done:
            return
        d = self.deployment
        app = app or self.rng.choice(self.apps)
        task_hash, data_hash = _hashes(self.tasks)
        self.tasks += 1
        self.available_at_estimate.append(self.available())
        gas = lowest_limit(d, app, task_hash, data_hash)
        self.estimates.append(gas)
        # What the estimate's block would pick (eth_call runs in the same block).
        expected = tuple(d.task.selected_node(task_hash, data_hash, r) for r in range(3))
        self._meanwhile()
        try:
            task_id, picks, used = create(d, app, task_hash, data_hash, gas)
        except RevertError as exc:
            used = int(exc.receipt["gasUsed"]) if exc.receipt is not None else -1
            self.out_of_gas += used == gas
            self.failures.append(f"task {self.tasks} ({self.available_at_estimate[-1]} available): estimate {gas}, gas used {used}: {exc}")
            return
        self.open_tasks.append((task_id, app))
        self.gas_used.append(used)
        self.moved += picks != expected

    def _meanwhile(self) -> None:
        """Between the estimate and the transaction: empty blocks, another
        transaction, a node joining, or nothing (the next block still picks anew)."""
        d = self.deployment
        choice = self.rng.randrange(4)
        if choice == 0:
            for _ in range(self.rng.randint(1, 3)):
                d.chain.mine()
        elif choice == 1:
            d.token.transfer(self.apps[0], d.chain.faucet.address, 1)
        elif choice == 2:
            self.join(1)

    def cancel_oldest(self) -> None:
        task_id, app = self.open_tasks.pop(0)
        deadline = self.deployment.task.get_task(task_id).timeout
        if self.deployment.chain.now() < deadline:
            self.deployment.chain.set_next_timestamp(deadline + 1)
        self.deployment.task.cancel(app, task_id)

    def cancel_all(self) -> None:
        while self.open_tasks:
            self.cancel_oldest()

    def churn(self) -> None:
        """A random node event: pause, resume, quit or join."""
        d = self.deployment
        choice = self.rng.randrange(4)
        available = self.with_status(NodeStatus.AVAILABLE)
        if choice == 0 and len(available) > 3:
            d.node.pause(self.rng.choice(available))
        elif choice == 1 and (paused := self.with_status(NodeStatus.PAUSED)):
            d.node.resume(self.rng.choice(paused))
        elif choice == 2 and len(available) > 3:
            d.node.quit(self.rng.choice(available))
        else:
            self.join(1)

    def run(self) -> None:
        d = self.deployment
        # Many nodes, and the very first task: the costliest case (deviation 5).
        self.join(12)
        for _ in range(4):
            self.task(self.apps[0])
        self.cancel_all()
        # Exactly 3 available nodes: every task takes all of them in some order
        # (unless one joins between the estimate and the transaction).
        for _ in range(8):
            for node in self.with_status(NodeStatus.AVAILABLE)[3:]:
                d.node.pause(node)
            assert self.available() == 3
            self.task()
            self.cancel_all()
        # Many nodes coming and going, some tasks left open for a while.
        for node in self.with_status(NodeStatus.PAUSED):
            d.node.resume(node)
        self.join(8)
        for _ in range(22):
            while self.open_tasks and (self.available() < 3 or self.rng.random() < 0.3):
                self.cancel_oldest()
            self.task()
            if self.rng.random() < 0.5:
                self.churn()
        self.cancel_all()


def _apps(deployment: Deployment) -> list[LocalAccount]:
    """An app with a finite allowance (its receipts log Approval) and one with an
    infinite allowance (no Approval)."""
    return [
        deployment.new_app(cnx=10_000 * CNX, approve=10_000 * CNX),
        deployment.new_app(cnx=10_000 * CNX, approve=MAX_UINT),
    ]


@pytest.mark.eth_tester
def test_the_search_by_calls_finds_the_exact_estimate(contracts: Deployment) -> None:
    """`lowest_limit` is what py-evm's exact eth_estimateGas returns, with 3 nodes
    (each pick moves the list) and with 12 (the first task, the costliest case)."""
    app = _apps(contracts)[0]
    with exact_estimates(contracts.chain):
        for count, index in ((3, 0), (9, 4)):
            for _ in range(count):
                contracts.new_node()
            task_hash, data_hash = _hashes(index)
            assert lowest_limit(contracts, app, task_hash, data_hash) == estimate(contracts, app, task_hash, data_hash)


def test_an_estimate_from_an_earlier_block_always_suffices(revm_contracts: Deployment) -> None:
    run = EstimateThenMine(revm_contracts, _apps(revm_contracts))
    run.run()
    assert run.failures == [], "\n".join(run.failures)
    assert run.tasks == len(run.gas_used) == 34
    # The runs that matter: 3 nodes only, and many.
    assert min(run.available_at_estimate) == 3 and max(run.available_at_estimate) >= 12
    # The picks did change between estimate and transaction, and so did the gas
    # they needed (without the check, see the control test below, this fails).
    assert run.moved >= run.tasks // 2, f"only {run.moved} of {run.tasks} tasks were mined with other picks"
    assert len(set(run.gas_used)) >= 10
    # Every estimate covers the check, and fits the harness's limits and the block.
    for gas in run.estimates:
        assert NEEDED + INTRINSIC_GAS < gas <= TASK_GAS < BLOCK_GAS_LIMIT  # the app's createTask limit too


def test_without_the_check_an_estimate_can_run_out_of_gas(tmp_path: Path) -> None:
    """The control: the same run against Task.vy without the check (the contract as
    it was before deviation 5) sends a transaction that runs out of gas."""
    for source in sources_dir().glob("*.vy"):
        text = source.read_text()
        if source.name == "Task.vy":
            assert text.count(CHECK_LINE) == 1
            text = text.replace(CHECK_LINE, "")
        (tmp_path / source.name).write_text(text)
    deployment = deploy(Chain.revm(seed=7), source_dir=tmp_path)
    run = EstimateThenMine(deployment, _apps(deployment), stop_at_first_failure=True)
    run.run()
    assert run.failures, "every estimate sufficed even without the check: the run does not exercise the problem"
    assert run.out_of_gas == len(run.failures), run.failures  # out of gas, not a revert string


@pytest.mark.eth_tester
def test_the_estimate_is_the_check_whatever_the_pick(contracts: Deployment) -> None:
    """The estimate no longer depends on the block or the number of nodes: it is the
    gas up to the check plus CREATE_TASK_GAS_NEEDED, and one gas less fails there."""
    app = _apps(contracts)[0]
    task_hash, data_hash = _hashes(0)
    with exact_estimates(contracts.chain):
        for _ in range(3):
            contracts.new_node()
        estimates = {estimate(contracts, app, task_hash, data_hash)}
        for _ in range(3):
            contracts.chain.mine()
            estimates.add(estimate(contracts, app, task_hash, data_hash))
        for _ in range(20):
            contracts.new_node()
        for _ in range(3):
            contracts.chain.mine()
            estimates.add(estimate(contracts, app, task_hash, data_hash))
    assert len(estimates) == 1, f"estimates differ: {sorted(estimates)}"
    (gas,) = estimates
    assert NEEDED + INTRINSIC_GAS < gas < NEEDED + 50_000
    if isinstance(contracts.chain.backend, TesterBackend):  # an exact estimate
        with expect_revert("Not enough gas for task"):
            create(contracts, app, task_hash, data_hash, gas - 1)
    _, _, used = create(contracts, app, task_hash, data_hash, gas)
    assert used < NEEDED  # the check asks for more than the task ever uses


@pytest.mark.eth_tester
@pytest.mark.parametrize("gas", [TASK_GAS, 120_000], ids=["normal-limit", "below-the-check"])
def test_view_check_reasons_come_before_the_gas_check(contracts: Deployment, gas: int) -> None:
    """The check comes after the three view checks, so their reasons (and their
    order, PROTOCOL.md 2.3) are unchanged whatever the gas limit, and
    eth_estimateGas reports them too."""
    poor = contracts.new_app(cnx=30 * CNX - 1, approve=1000 * CNX)
    unapproved = contracts.new_app(cnx=1000 * CNX, approve=30 * CNX - 1)
    broke = contracts.new_app(cnx=0)
    approved = contracts.new_app(cnx=1000 * CNX, approve=1000 * CNX)
    task_hash, data_hash = _hashes(1)

    def expect(app: LocalAccount, reason: str) -> None:
        with expect_revert(reason):
            create(contracts, app, task_hash, data_hash, gas)
        with pytest.raises(Exception) as raised:
            estimate(contracts, app, task_hash, data_hash)
        assert decode_revert(raised.value) == reason

    # No nodes: every view check would fail, and the first one counts.
    expect(broke, "Not enough tokens for task")
    expect(poor, "Not enough tokens for task")
    expect(unapproved, "Not enough allowance for task")
    expect(approved, "Not enough nodes")
    for _ in range(3):
        contracts.new_node()
    expect(poor, "Not enough tokens for task")
    expect(unapproved, "Not enough allowance for task")
    if gas >= NEEDED + 50_000:
        task_id, _, _ = create(contracts, approved, task_hash, data_hash, gas)
        assert task_id == 1
    else:
        with expect_revert("Not enough gas for task"):
            create(contracts, approved, task_hash, data_hash, gas)
        assert contracts.task.total_tasks() == 0
        assert contracts.node.available_nodes() == 3
