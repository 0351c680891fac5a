"""The Node registry (PROTOCOL.md 2.2): joining, staking, statuses and the Task-only calls.

"Network is full" (at most 100,000 nodes) is not tested: reaching it would take
100,000 joins (400,000 transactions, about an hour on the in-memory chain), and the
limit cannot be lowered without editing the contract. What is tested is that the
contract reports the limit (`maxNodes() == 100000`) and that a join below it works.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import NodeStatus
from tests.contracts.helpers import FEE, JoinNodes, HONEST, STAKE, Balances, assert_invariants, flip_bits, start_task

S = NodeStatus
ILLEGAL = "Illegal node status"


def node_in_status(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount, status: NodeStatus) -> LocalAccount:
    """A node in `status`. QUIT: an account holding one stake, approved, never joined.
    The BUSY family: round 0's node of a task over exactly 3 joined nodes."""
    if status == S.QUIT:
        return contracts.new_node(join=False)
    if status in (S.AVAILABLE, S.PAUSED):
        node = contracts.new_node()
        if status == S.PAUSED:
            contracts.node.pause(node)
        return node
    node = start_task(contracts, app, join_nodes(3)).nodes[0]
    if status == S.PENDING_PAUSE:
        contracts.node.pause(node)
    elif status == S.PENDING_QUIT:
        contracts.node.quit(node)
    assert contracts.node.status(node.address) == status
    return node


# ------------------------------------------------------------------ join


def test_join_pulls_the_stake_and_makes_the_node_available(contracts: Deployment) -> None:
    node = contracts.new_node(join=False)
    watch = Balances(contracts, node=node.address, registry=contracts.node.address)
    assert contracts.node.status(node.address) == S.QUIT
    contracts.node.join(node)
    watch.assert_changes(node=-STAKE, registry=+STAKE)
    assert contracts.node.status(node.address) == S.AVAILABLE
    assert contracts.node.total_nodes() == 1
    assert contracts.node.available_nodes() == 1
    assert contracts.node.available_node_at(0) == node.address
    assert contracts.token.allowance(node.address, contracts.node.address) == 0


def test_network_limit_is_100000_nodes(contracts: Deployment) -> None:
    assert contracts.node.chain.call(contracts.node.contract.functions.maxNodes()) == 100_000
    assert contracts.node.chain.call(contracts.node.contract.functions.stakeAmount()) == STAKE


@pytest.mark.parametrize("status", [S.AVAILABLE, S.BUSY, S.PENDING_PAUSE, S.PENDING_QUIT, S.PAUSED], ids=lambda s: s.name)
def test_join_when_already_joined_reverts(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount, status: NodeStatus) -> None:
    node = node_in_status(contracts, join_nodes, app, status)
    # Give it a second stake and allowance, so only the status check can fail.
    contracts.fund(node.address, cnx=STAKE)
    contracts.token.approve(node, contracts.node.address, STAKE)
    total = contracts.node.total_nodes()
    with expect_revert("Node already joined"):
        contracts.node.join(node)
    assert contracts.node.status(node.address) == status
    assert contracts.node.total_nodes() == total
    assert contracts.token.balance_of(node.address) == STAKE


def test_join_without_enough_allowance_reverts(contracts: Deployment) -> None:
    node = contracts.new_account(cnx=STAKE)
    with expect_revert("Not enough allowance to stake"):
        contracts.node.join(node)
    contracts.token.approve(node, contracts.node.address, STAKE - 1)
    with expect_revert("Not enough allowance to stake"):
        contracts.node.join(node)
    assert contracts.token.balance_of(node.address) == STAKE
    assert contracts.node.status(node.address) == S.QUIT
    assert contracts.node.total_nodes() == 0


def test_join_without_enough_tokens_reverts(contracts: Deployment) -> None:
    node = contracts.new_account(cnx=STAKE - 1)
    contracts.token.approve(node, contracts.node.address, STAKE)
    with expect_revert("Not enough token to stake"):
        contracts.node.join(node)
    assert contracts.token.balance_of(node.address) == STAKE - 1
    assert contracts.node.status(node.address) == S.QUIT


def test_join_checks_allowance_before_balance(contracts: Deployment) -> None:
    node = contracts.new_account()  # neither tokens nor allowance
    with expect_revert("Not enough allowance to stake"):
        contracts.node.join(node)


def test_quit_returns_the_stake_exactly_and_the_node_can_rejoin(contracts: Deployment) -> None:
    node = contracts.new_node()
    watch = Balances(contracts, node=node.address, registry=contracts.node.address)
    contracts.node.quit(node)
    watch.assert_changes(node=+STAKE, registry=-STAKE)
    assert contracts.node.status(node.address) == S.QUIT
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (0, 0)
    contracts.token.approve(node, contracts.node.address, STAKE)
    contracts.node.join(node)
    assert contracts.node.status(node.address) == S.AVAILABLE
    assert contracts.token.balance_of(node.address) == 0
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (1, 1)


# ------------------------------------------------------------------ quit / pause / resume from every status

# (status before, action, status after or revert reason, change of totalNodes, of availableNodes, stake returned)
TRANSITIONS: list[tuple[NodeStatus, str, NodeStatus | str, int, int, bool]] = [
    (S.QUIT, "quit", ILLEGAL, 0, 0, False),
    (S.QUIT, "pause", ILLEGAL, 0, 0, False),
    (S.QUIT, "resume", ILLEGAL, 0, 0, False),
    (S.AVAILABLE, "quit", S.QUIT, -1, -1, True),
    (S.AVAILABLE, "pause", S.PAUSED, 0, -1, False),
    (S.AVAILABLE, "resume", ILLEGAL, 0, 0, False),
    (S.BUSY, "quit", S.PENDING_QUIT, 0, 0, False),
    (S.BUSY, "pause", S.PENDING_PAUSE, 0, 0, False),
    (S.BUSY, "resume", ILLEGAL, 0, 0, False),
    (S.PENDING_PAUSE, "quit", ILLEGAL, 0, 0, False),
    (S.PENDING_PAUSE, "pause", ILLEGAL, 0, 0, False),
    (S.PENDING_PAUSE, "resume", ILLEGAL, 0, 0, False),
    (S.PENDING_QUIT, "quit", ILLEGAL, 0, 0, False),
    (S.PENDING_QUIT, "pause", ILLEGAL, 0, 0, False),
    (S.PENDING_QUIT, "resume", ILLEGAL, 0, 0, False),
    (S.PAUSED, "quit", S.QUIT, -1, 0, True),
    (S.PAUSED, "pause", ILLEGAL, 0, 0, False),
    (S.PAUSED, "resume", S.AVAILABLE, 0, +1, False),
]


@pytest.mark.parametrize(
    ("before", "action", "after", "d_total", "d_available", "stake_back"),
    TRANSITIONS,
    ids=[f"{t[0].name}-{t[1]}" for t in TRANSITIONS],
)
def test_quit_pause_resume(
    contracts: Deployment,
    join_nodes: JoinNodes,
    app: LocalAccount,
    before: NodeStatus,
    action: str,
    after: NodeStatus | str,
    d_total: int,
    d_available: int,
    stake_back: bool,
) -> None:
    node = node_in_status(contracts, join_nodes, app, before)
    total, available = contracts.node.total_nodes(), contracts.node.available_nodes()
    watch = Balances(contracts, node=node.address, registry=contracts.node.address)
    call = getattr(contracts.node, action)
    if isinstance(after, str):
        with expect_revert(after):
            call(node)
        assert contracts.node.status(node.address) == before
    else:
        call(node)
        assert contracts.node.status(node.address) == after
    assert contracts.node.total_nodes() == total + d_total
    assert contracts.node.available_nodes() == available + d_available
    watch.assert_changes(node=STAKE if stake_back else 0, registry=-STAKE if stake_back else 0)


# ------------------------------------------------------------------ pending states resolved by the task


def test_pending_pause_and_pending_quit_resolve_when_the_task_settles(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> None:
    run = start_task(contracts, app, nodes)
    contracts.node.pause(run.nodes[0])
    contracts.node.quit(run.nodes[1])
    assert run.statuses() == (S.PENDING_PAUSE, S.PENDING_QUIT, S.BUSY)
    watch = run.balances()
    for r in range(3):
        run.commit(r, HONEST)
    run.disclose(0, HONEST)
    run.disclose(1, HONEST)  # d1 = round 1: paid at once and finished -> QUIT, stake back
    assert run.statuses() == (S.PENDING_PAUSE, S.QUIT, S.BUSY)
    watch.assert_changes(r1=FEE + STAKE, task=-FEE, node=-STAKE)
    run.disclose(2, HONEST)
    assert run.statuses() == (S.PENDING_PAUSE, S.QUIT, S.AVAILABLE)
    run.report_uploaded(0)  # d0: paid, finished -> PAUSED
    assert run.statuses() == (S.PAUSED, S.QUIT, S.AVAILABLE)
    watch.assert_changes(r0=FEE, r1=FEE + STAKE, r2=FEE, task=-3 * FEE, node=-STAKE)
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (2, 1)
    assert run.node_tasks() == (0, 0, 0)
    assert_invariants(contracts, nodes, [run.id])


def test_slash_of_a_pending_quit_node_keeps_its_stake_from_it(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> None:
    run = start_task(contracts, app, nodes)
    contracts.node.quit(run.nodes[2])
    contracts.node.pause(run.nodes[1])
    watch = run.balances()
    for r in range(3):
        run.commit(r, HONEST if r < 2 else flip_bits(HONEST, 5))
    run.disclose(0, HONEST)
    run.disclose(1, HONEST)
    run.disclose(2, flip_bits(HONEST, 5))  # a cheat, slashed while PENDING_QUIT
    assert run.statuses() == (S.BUSY, S.PAUSED, S.QUIT)
    watch.assert_changes(app=+FEE, r1=FEE, task=-2 * FEE, node=-STAKE, owner=+STAKE)
    assert contracts.node.total_nodes() == 2


def test_slash_sends_the_stake_to_the_node_contracts_current_owner(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> None:
    new_owner = contracts.new_account()
    contracts.node.transfer_ownership(contracts.owner, new_owner.address)
    assert contracts.node.owner() == new_owner.address
    assert contracts.task.owner() == contracts.owner.address
    run = start_task(contracts, app, nodes)
    watch = run.balances(new_owner=new_owner.address)
    for r in range(3):
        run.commit(r, HONEST if r != 1 else flip_bits(HONEST, 8, image=1))
    run.disclose(0, HONEST)
    run.disclose(1, flip_bits(HONEST, 8, image=1))
    run.disclose(2, HONEST)  # d1 = round 1 disagrees with d0 and d2: slashed
    watch.assert_changes(app=+FEE, r2=FEE, task=-2 * FEE, node=-STAKE, new_owner=+STAKE)
    assert contracts.node.status(run.nodes[1].address) == S.QUIT
    assert contracts.token.balance_of(run.nodes[1].address) == 0


# ------------------------------------------------------------------ Task-only calls and the owner


@pytest.mark.parametrize("function", ["start_task", "finish_task", "slash"])
@pytest.mark.parametrize("caller", ["owner", "stranger", "node itself"])
def test_only_the_task_contract_may_drive_nodes(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount], function: str, caller: str) -> None:
    run = start_task(contracts, app, nodes)
    busy = run.nodes[0]
    sender = {"owner": contracts.owner, "stranger": contracts.new_account(), "node itself": busy}[caller]
    with expect_revert("Not called by the task contract"):
        getattr(contracts.node, function)(sender, busy.address)
    assert contracts.node.status(busy.address) == S.BUSY
    assert contracts.token.balance_of(contracts.node.address) == 3 * STAKE


def test_task_only_calls_follow_the_node_rules(contracts: Deployment) -> None:
    """With the Task address pointed at an account, the Node rules of 2.2 are visible.
    PROTOCOL.md gives no revert string for slash of a node that is not busy; H-net's
    Node.slash requires "Illegal node status", as finishTask does."""
    driver = contracts.new_account()
    contracts.node.update_task_contract_address(contracts.owner, driver.address)
    assert contracts.node.chain.call(contracts.node.contract.functions.taskContract()) == driver.address
    a, b = contracts.new_node(), contracts.new_node()
    registry = contracts.node
    with expect_revert(ILLEGAL):
        registry.finish_task(driver, a.address)  # AVAILABLE
    with expect_revert(ILLEGAL):
        registry.slash(driver, a.address)  # AVAILABLE
    registry.start_task(driver, a.address)
    assert (registry.status(a.address), registry.available_nodes()) == (S.BUSY, 1)
    with expect_revert("Node is not available"):
        registry.start_task(driver, a.address)
    registry.finish_task(driver, a.address)
    assert (registry.status(a.address), registry.available_nodes()) == (S.AVAILABLE, 2)
    registry.pause(b)
    with expect_revert("Node is not available"):
        registry.start_task(driver, b.address)
    with expect_revert(ILLEGAL):
        registry.finish_task(driver, b.address)  # PAUSED
    with expect_revert(ILLEGAL):
        registry.slash(driver, b.address)  # PAUSED
    stranger = contracts.new_account()
    with expect_revert("Node is not available"):
        registry.start_task(driver, stranger.address)  # QUIT
    with expect_revert(ILLEGAL):
        registry.finish_task(driver, stranger.address)  # QUIT
    registry.start_task(driver, a.address)
    registry.pause(a)  # PENDING_PAUSE
    watch = Balances(contracts, a=a.address, registry=registry.address, owner=contracts.owner.address)
    registry.slash(driver, a.address)
    watch.assert_changes(registry=-STAKE, owner=+STAKE)
    assert registry.status(a.address) == S.QUIT
    assert (registry.total_nodes(), registry.available_nodes()) == (1, 0)


def test_only_the_owner_may_update_the_task_contract_address(contracts: Deployment) -> None:
    stranger = contracts.new_account()
    with expect_revert("Ownable: caller is not the owner"):
        contracts.node.update_task_contract_address(stranger, stranger.address)
    assert contracts.node.chain.call(contracts.node.contract.functions.taskContract()) == contracts.task.address


def _binding(contracts: Deployment, name: str) -> Any:
    return getattr(contracts, name)


@pytest.mark.parametrize("contract", ["node", "task"])
def test_ownable(contracts: Deployment, contract: str) -> None:
    binding = _binding(contracts, contract)
    stranger, heir = contracts.new_account(), contracts.new_account()
    assert binding.owner() == contracts.owner.address
    with expect_revert("Ownable: caller is not the owner"):
        binding.transfer_ownership(stranger, stranger.address)
    with expect_revert("Ownable: new owner is the zero address"):
        binding.transfer_ownership(contracts.owner, "0x" + "00" * 20)
    binding.transfer_ownership(contracts.owner, heir.address)
    assert binding.owner() == heir.address
    with expect_revert("Ownable: caller is not the owner"):
        binding.transfer_ownership(contracts.owner, contracts.owner.address)
    contracts.chain.transact(heir, binding.contract.functions.renounceOwnership(), gas=100_000)
    assert binding.owner() == "0x" + "00" * 20
    with expect_revert("Ownable: caller is not the owner"):
        binding.transfer_ownership(heir, heir.address)


# ------------------------------------------------------------------ counts


def test_total_and_available_counts(contracts: Deployment, join_nodes: JoinNodes, app: LocalAccount) -> None:
    nodes = join_nodes(5)
    accounts = list(nodes.values())
    registry = contracts.node

    def counts() -> tuple[int, int]:
        return registry.total_nodes(), registry.available_nodes()

    assert counts() == (5, 5)
    registry.pause(accounts[0])
    assert counts() == (5, 4)
    run = start_task(contracts, app, nodes)
    assert counts() == (5, 1)
    registry.quit(run.nodes[0])  # PENDING_QUIT
    assert counts() == (5, 1)
    registry.resume(accounts[0])
    assert counts() == (5, 2)
    idle = next(a for a in accounts if registry.status(a.address) == S.AVAILABLE and a is not accounts[0])
    registry.quit(idle)
    assert counts() == (4, 1)
    run.cancel()  # frees round 0 (PENDING_QUIT -> removed) and the two others
    assert counts() == (3, 3)
    assert_invariants(contracts, nodes, [run.id])
