"""Node selection (PROTOCOL.md 2.4): available, distinct, predictable, uniform, O(1) gas.

Predicting a pick with getSelectedNode. A createTask sent now is mined in the next
block, N+1, and its selection seed mixes `blockhash(N)`, the hashes, the round and
`block.prevrandao` (the in-memory chain's seeded mix hash of block N+1, which the
pending header carries). An `eth_call` at "pending" runs in exactly that
environment (number N+1, parent N, that prevrandao, the state after N), so
`getSelectedNode(...)` called at "pending" in the block before equals the pick,
as long as nothing else is mined in between: that is what is checked here. A call
at "latest" (what `TaskContract.selected_node` does) runs in block N's environment
instead (parent N-1, N's prevrandao): it names what a createTask mined *in* block N
picked, not what the next one will pick (see the last-but-one test).

Uniformity: with --hydrogen-seed 0 (the default) the test accounts have fixed keys,
so the blocks and the picks are the same on every run, whatever ran before. The test
runs on revm (`revm_contracts`), where the p-values are then 0.0033, 0.016 and 0.0072
for rounds 0-2 and 0.15 for the triples: a low draw (the rounds' counts are
dependent, a skew in round 0 shows in the others), above the 0.001 the test asks
for; with --hydrogen-seed 1 to 6 every p-value lies between 0.035 and 0.79 (on
eth-tester, seed 0: 0.27, 0.23, 0.64 and 0.11).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from hydrogen_harness.chain import tester as backends
from hydrogen_harness.chain.contracts import CreatedTask, Deployment
from hydrogen_harness.protocol.constants import CNX, ZERO_HASH, NodeStatus
from tests.contracts.helpers import HONEST, STAKE, JoinNodes, RunningTask, assert_invariants, start_task

AVAILABLE, BUSY, PAUSED = NodeStatus.AVAILABLE, NodeStatus.BUSY, NodeStatus.PAUSED
SEED = 20231114  # fixed: the task hashes, hence the picks, are the same on every run
SAMPLES = 300
PREDICTED_SAMPLES = 20  # getSelectedNode is compared with the pick for these
SIGNIFICANCE = 0.001  # a uniformity test fails when p < 0.001


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square(dof): the regularized upper incomplete gamma
    Q(dof/2, x/2), from its closed forms (Q(a+1, y) = Q(a, y) + y^a e^-y / Gamma(a+1),
    Q(1, y) = e^-y, Q(1/2, y) = erfc(sqrt(y)))."""
    if x <= 0:
        return 1.0
    y = x / 2
    if dof % 2 == 0:
        a, total, term = 1.0, math.exp(-y), math.exp(-y)  # term = y^(a-1) e^-y / Gamma(a)
        for _ in range(dof // 2 - 1):
            term *= y / a
            total += term
            a += 1
        return total
    a, total = 0.5, math.erfc(math.sqrt(y))
    term = math.sqrt(y) * math.exp(-y) / math.gamma(1.5)  # y^a e^-y / Gamma(a+1)
    for _ in range(dof // 2):
        total += term
        a += 1
        term *= y / a
    return total


def chi2_p(counts: list[int], expected: float) -> float:
    statistic = sum((c - expected) ** 2 / expected for c in counts)
    return chi2_sf(statistic, len(counts) - 1)


@pytest.mark.parametrize(
    ("x", "dof", "p"),
    [
        (3.841458820694124, 1, 0.05),
        (5.991464547107979, 2, 0.05),
        (7.814727903251178, 3, 0.05),
        (11.070497693516351, 5, 0.05),
        (30.14352720564616, 19, 0.05),
        (20.515005652432873, 5, 0.001),
        (43.82019595302582, 19, 0.001),
        (1.0, 4, 0.9097959895689501),
        (0.0, 7, 1.0),
    ],
)
def test_chi2_survival_function(x: float, dof: int, p: float) -> None:
    assert chi2_sf(x, dof) == pytest.approx(p, rel=1e-7, abs=1e-12)


def _predict(contracts: Deployment, task_hash: bytes) -> tuple[str, ...]:
    fn = contracts.task.contract.functions.getSelectedNode
    return tuple(str(contracts.chain.call(fn(task_hash, ZERO_HASH, r), block="pending")) for r in range(3))


def _available(contracts: Deployment, nodes: dict[str, LocalAccount]) -> set[str]:
    return {a for a in nodes if contracts.node.status(a) == AVAILABLE}


def _fixed_account(contracts: Deployment, label: str, cnx: int) -> LocalAccount:
    """An account whose key depends only on `label` (not on how many accounts earlier
    tests made), funded with 1 ETH and `cnx`: with such accounts the blocks, hence
    the block hashes and the picks, are the same whatever ran before."""
    account: LocalAccount = Account.from_key(keccak(f"contract-tests:selection:{label}".encode()))
    contracts.chain.send_eth(account.address, 10**18)
    contracts.fund(account.address, cnx=cnx)
    return account


@pytest.mark.slow
def test_picks_are_available_distinct_predicted_and_uniform(revm_contracts: Deployment) -> None:
    """300 createTask from one state (a snapshot) with 6 of 10 nodes AVAILABLE, on revm
    (a second instead of 15 on eth-tester; predictions on eth-tester are checked by
    test_picks_as_the_network_changes)."""
    contracts = revm_contracts
    nodes: dict[str, LocalAccount] = {}
    for i in range(10):
        node = _fixed_account(contracts, f"node-{i}", STAKE)
        contracts.token.approve(node, contracts.node.address, STAKE)
        contracts.node.join(node)
        nodes[node.address] = node
    app = _fixed_account(contracts, "app", 100 * CNX)
    contracts.token.approve(app, contracts.task.address, 2**256 - 1)
    busy = start_task(contracts, app, nodes, task_hash=keccak(b"busy"))
    contracts.node.pause(next(a for a in nodes.values() if a not in busy.nodes))
    available = sorted(_available(contracts, nodes))
    assert len(available) == 6
    rng = random.Random(SEED)
    snapshot = contracts.chain.snapshot()
    picks: list[tuple[str, str, str]] = []
    for i in range(SAMPLES):
        task_hash = rng.randbytes(32)
        predicted = _predict(contracts, task_hash) if i < PREDICTED_SAMPLES else None
        created: CreatedTask = contracts.task.create_task(app, task_hash)
        contracts.chain.revert(snapshot)
        snapshot = contracts.chain.snapshot()  # a JSON-RPC node (anvil) forgets a used snapshot
        assert predicted in (None, created.selected_nodes), f"sample {i}"
        picks.append(created.selected_nodes)
    assert all(len(set(p)) == 3 and set(p) <= set(available) for p in picks)
    # Each round's pick is uniform over the 6 (5 degrees of freedom).
    for r in range(3):
        counts = Counter(p[r] for p in picks)
        p_value = chi2_p([counts[a] for a in available], SAMPLES / 6)
        assert p_value > SIGNIFICANCE, (r, p_value, counts)
    # The chosen set is uniform over the C(6,3) = 20 triples (19 degrees of freedom).
    triples = Counter(frozenset(p) for p in picks)
    all_triples = [frozenset(t) for t in itertools.combinations(available, 3)]
    p_value = chi2_p([triples[t] for t in all_triples], SAMPLES / 20)
    assert p_value > SIGNIFICANCE, (p_value, triples)


def _settle(contracts: Deployment, run: RunningTask, mode: str) -> None:
    if mode == "errors":  # three error reports: all paid and freed
        for r in range(3):
            run.report_error(r)
    elif mode == "honest":
        for r in range(3):
            run.commit(r, HONEST)
        for r in range(3):
            run.disclose(r, HONEST)
        run.report_uploaded(0)
    else:
        run.cancel()


@pytest.mark.eth_tester
def test_picks_as_the_network_changes(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount) -> None:
    """20 tasks while nodes join, pause, resume, quit and tasks settle or are cancelled:
    every pick is AVAILABLE, distinct and the one getSelectedNode gave just before."""
    rng = random.Random(SEED)
    nodes = join_nodes(7)
    live: list[RunningTask] = []
    created: list[int] = []
    registry = contracts.node
    for i in range(20):
        while registry.available_nodes() < 3 or len(live) > 2:
            _settle(contracts, live.pop(0), rng.choice(["errors", "honest", "cancel"]))
        statuses = {a: registry.status(a) for a in nodes}
        action = rng.choice(["none", "pause", "resume", "join", "quit", "pause busy", "quit busy"])
        idle = [a for a, s in statuses.items() if s == AVAILABLE]
        paused = [a for a, s in statuses.items() if s == PAUSED]
        busy = [a for a, s in statuses.items() if s == BUSY]
        if action == "pause" and len(idle) > 3:
            registry.pause(nodes[rng.choice(idle)])
        elif action == "resume" and paused:
            registry.resume(nodes[rng.choice(paused)])
        elif action == "join" and len(nodes) < 12:
            nodes.update(join_nodes(1))
        elif action == "quit" and len(idle) > 3:
            registry.quit(nodes[rng.choice(idle)])
        elif action == "pause busy" and busy:
            registry.pause(nodes[rng.choice(busy)])
        elif action == "quit busy" and busy:
            registry.quit(nodes[rng.choice(busy)])
        available = _available(contracts, nodes)
        task_hash = rng.randbytes(32)
        predicted = _predict(contracts, task_hash)
        run = start_task(contracts, app, nodes, task_hash=task_hash)
        picked = run.created.selected_nodes
        assert predicted == picked, f"task {i}"
        assert len(set(picked)) == 3 and set(picked) <= available, f"task {i}"
        assert run.statuses() == (BUSY,) * 3
        live.append(run)
        created.append(run.id)
    assert_invariants(contracts, nodes, created)


@pytest.mark.eth_tester
def test_view_at_latest_matches_a_create_task_mined_in_that_block(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount) -> None:
    """getSelectedNode evaluated in block N (an eth_call at "latest" once N is mined)
    must name the node a createTask mined in block N picked: same parent hash, same
    state, same prevrandao. Block N is mined twice from one snapshot: once with the
    createTask, once empty (same number, so the same seeded mixHash)."""
    if not isinstance(contracts.chain.backend, backends.TesterBackend):
        pytest.skip("only the seeded in-memory chain mines both blocks N with one prevrandao")
    join_nodes(8)
    task_hash = bytes(range(32))
    snapshot = contracts.chain.snapshot()
    picked = contracts.task.create_task(app, task_hash).selected_nodes
    contracts.chain.revert(snapshot)
    contracts.chain.mine()
    fn = contracts.task.contract.functions.getSelectedNode
    at_latest = tuple(str(contracts.chain.call(fn(task_hash, ZERO_HASH, r), block="latest")) for r in range(3))
    assert at_latest == picked


@pytest.mark.slow
def test_create_task_gas_does_not_grow_with_the_network(revm_contracts: Deployment, revm_join_nodes: JoinNodes, revm_app: LocalAccount) -> None:
    """The same 4 task hashes, with 10 then 200 joined nodes: every createTask costs
    within 5% of the mean cost with 10 nodes. On revm (eth-tester's gas: 800 set-up
    transactions in a second instead of 10)."""
    contracts, join_nodes, app = revm_contracts, revm_join_nodes, revm_app
    hashes = [bytes([i]) * 32 for i in range(1, 5)]

    def gas_used() -> list[int]:
        snapshot = contracts.chain.snapshot()
        used = []
        for task_hash in hashes:
            used.append(int(contracts.task.create_task(app, task_hash).receipt["gasUsed"]))
            contracts.chain.revert(snapshot)
            snapshot = contracts.chain.snapshot()
        return used

    join_nodes(10)
    small = gas_used()
    join_nodes(190)
    assert contracts.node.available_nodes() == 200
    large = gas_used()
    reference = sum(small) / len(small)
    for gas in small + large:
        assert abs(gas - reference) <= 0.05 * reference, (small, large)
    assert abs(sum(large) / len(large) - reference) <= 0.05 * reference
