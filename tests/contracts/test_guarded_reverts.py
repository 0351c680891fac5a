"""Revert strings the shipped contracts cannot reach with their own parameters.

"Network is full" needs 100,000 nodes and "Task fee payment failed" a token whose
transferFrom returns false; both are reached here on copies of the contracts with
one constant or one return value changed, so the check itself is still exercised.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.compiler import sources_dir
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import CNX, NodeStatus


def _variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "contracts"
    folder.mkdir()
    for source in sources_dir().glob("*.vy"):
        shutil.copy(source, folder / source.name)
    text = (folder / f"{name}.vy").read_text()
    assert text.count(old) == 1, f"{old!r} must appear once in {name}.vy"
    (folder / f"{name}.vy").write_text(text.replace(old, new))
    return folder


@pytest.fixture
def small_network(tmp_path: Path) -> Deployment:
    folder = _variant(tmp_path, "Node", "MAX_NODES: constant(uint256) = 100_000", "MAX_NODES: constant(uint256) = 3")
    return deploy(Chain.in_memory(seed=11), source_dir=folder)


def test_network_is_full_at_max_nodes(small_network: Deployment) -> None:
    for _ in range(3):
        small_network.new_node()
    late = small_network.new_node(join=False)
    with expect_revert("Network is full"):
        small_network.node.join(late)
    assert small_network.node.status(late.address) is NodeStatus.QUIT
    assert small_network.token.balance_of(late.address) == 400 * CNX


def test_a_freed_place_can_be_taken_again(small_network: Deployment) -> None:
    nodes = [small_network.new_node() for _ in range(3)]
    small_network.node.quit(nodes[0])
    late = small_network.new_node()
    assert small_network.node.status(late.address) is NodeStatus.AVAILABLE
    assert small_network.node.total_nodes() == 3


def test_task_fee_payment_failed_when_the_token_returns_false(tmp_path: Path) -> None:
    # A token that answers false (instead of reverting) for exactly the 3-fee escrow.
    folder = _variant(
        tmp_path,
        "CNX",
        "    self._transfer(sender, receiver, amount)\n    return True\n\n\n@external\ndef increaseAllowance",
        "    if amount == 30 * 10**18:\n        return False\n    self._transfer(sender, receiver, amount)\n    return True\n\n\n@external\ndef increaseAllowance",
    )
    contracts = deploy(Chain.in_memory(seed=12), source_dir=folder)
    for _ in range(3):
        contracts.new_node()
    app = contracts.new_app(cnx=100 * CNX, approve=30 * CNX)
    with expect_revert("Task fee payment failed"):
        contracts.task.create_task(app, b"\x01" * 32)
    assert contracts.token.balance_of(app.address) == 100 * CNX
    assert contracts.node.available_nodes() == 3
    assert contracts.task.total_tasks() == 0
