"""Snapshots on the revm backend: exact restores, used once, and no leak of call depth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount

from harness.chain import Chain
from harness.contracts import Deployment, deploy
from harness.protocol import CNX


@pytest.fixture(scope="module")
def net() -> Iterator[Deployment]:
    yield deploy(Chain.revm(seed=3))


@pytest.fixture
def app(net: Deployment) -> Iterator[LocalAccount]:
    undo = net.chain.isolate()
    yield net.new_app(cnx=100 * CNX)
    undo()


def test_revert_restores_balances_and_blocks(net: Deployment, app: LocalAccount) -> None:
    chain, token = net.chain, net.token
    before = (token.balance_of(app.address), chain.block_number, chain.now())
    snapshot = chain.snapshot()
    token.transfer(app, net.task.address, 7 * CNX)
    chain.advance(60)
    assert token.balance_of(app.address) == 93 * CNX
    chain.revert(snapshot)
    assert (token.balance_of(app.address), chain.block_number, chain.now()) == before


def test_a_snapshot_is_used_up_with_every_later_one(net: Deployment, app: LocalAccount) -> None:
    chain, token = net.chain, net.token
    outer = chain.snapshot()
    token.transfer(app, net.task.address, 1 * CNX)
    inner = chain.snapshot()
    token.transfer(app, net.task.address, 2 * CNX)
    chain.revert(outer)
    assert token.balance_of(app.address) == 100 * CNX
    for used in (outer, inner):
        with pytest.raises(ValueError, match=f"unknown snapshot {used}"):
            chain.revert(used)


def test_many_isolated_runs_leave_calls_working(net: Deployment, app: LocalAccount) -> None:
    """Each open revm checkpoint is a level of call depth (the limit is 1024): a
    snapshot that is reverted must give its level back, or after ~1024 runs every
    call halts with CallTooDeep (it did, in the deep property profile)."""
    chain, token = net.chain, net.token
    for _ in range(1100):
        undo = chain.isolate()
        token.transfer(app, net.task.address, 1)
        undo()
    token.transfer(app, net.task.address, 5 * CNX)
    assert token.balance_of(app.address) == 95 * CNX
    assert token.balance_of(net.task.address) == 5 * CNX
