"""The revm backend: snapshots (exact restores, used once, no leak of call depth) and
failures (a halt is a failed transaction that says why)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import Deployment, deploy
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.protocol.reverts import RevertError
from hydrogen_harness.chain.revm import Failure, _failure


@pytest.fixture(scope="module")
def net() -> Iterator[Deployment]:
    yield deploy(Chain.revm(seed=3))


@pytest.fixture
def app(net: Deployment) -> Iterator[LocalAccount]:
    with net.chain.isolation():
        yield net.new_app(cnx=100 * CNX)


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
        with chain.isolation():
            token.transfer(app, net.task.address, 1)
    token.transfer(app, net.task.address, 5 * CNX)
    assert token.balance_of(app.address) == 95 * CNX
    assert token.balance_of(net.task.address) == 5 * CNX


def test_a_halted_transaction_fails_and_says_why(net: Deployment, app: LocalAccount) -> None:
    """Out of gas is a failed transaction (status 0, nothing moved), not a success."""
    chain, token = net.chain, net.token
    data = token.contract.functions.transfer(net.task.address, 1 * CNX)._encode_transaction_data()
    with pytest.raises(RevertError, match=r"halted: OutOfGas") as caught:
        chain.send(app, to=token.address, data=data, gas=23_000, label="transfer")
    assert caught.value.reason is None
    assert caught.value.receipt["status"] == 0
    assert token.balance_of(app.address) == 100 * CNX


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Revert { gas_used: 23762, output: 0x }", Failure(b"")),
        ("Revert { gas_used: 9, output: 0x08c379a0 }", Failure(bytes.fromhex("08c379a0"))),
        ("Halt { reason: CallTooDeep, gas_used: 21064 }", Failure(b"", halt="CallTooDeep")),
        ("Halt { reason: OutOfGas(Basic), gas_used: 23000 }", Failure(b"", halt="OutOfGas")),
    ],
)
def test_pyrevm_failures_are_read(message: str, expected: Failure) -> None:
    assert _failure(message) == expected
