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


# ---------------------------------------------------------------- fidelity to eth-tester

SIGNED = [
    {"chainId": 7, "nonce": 3, "gas": 50_000, "value": 5, "data": b"\x00\x01ab", "to": "0x" + "11" * 20, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 0},
    {"chainId": 7, "nonce": 0, "gas": 900_000, "value": 0, "data": b"\x60\x00" * 50, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 2},
    {"chainId": 7, "nonce": 9, "gas": 21_000, "value": 10**18, "data": b"", "to": "0x" + "22" * 20, "gasPrice": 7},
    {"nonce": 9, "gas": 21_000, "value": 1, "data": b"", "to": "0x" + "22" * 20, "gasPrice": 7},
]


@pytest.mark.parametrize("fields", SIGNED, ids=["eip1559-call", "eip1559-create", "legacy-eip155", "legacy"])
def test_a_signed_transaction_is_read_as_eth_account_signed_it(fields: dict) -> None:
    from eth_account import Account

    from hydrogen_harness.chain.revm import _decoded

    account = Account.from_key(b"\x05" * 32)
    tx, sender = _decoded(bytes(account.sign_transaction(fields).raw_transaction))
    assert sender == account.address.lower()
    assert (tx.chain_id, tx.nonce, tx.gas, tx.value, tx.data) == (fields.get("chainId"), fields["nonce"], fields["gas"], fields["value"], fields["data"])
    assert (tx.to or "").lower() == fields.get("to", "")
    assert tx.max_fee == fields.get("maxFeePerGas", fields.get("gasPrice"))


def _refusal(chain: Chain, sender: LocalAccount, **tx: object) -> str:
    from eth_utils import ValidationError

    with pytest.raises(ValidationError) as refused:
        chain.send(sender, **tx)  # type: ignore[arg-type]
    return str(refused.value)


@pytest.mark.parametrize(
    ("eth", "tx"),
    [
        (10**15, {"to": "0x" + "22" * 20, "data": b"", "value": 10**15}),  # value and gas above the balance
        (10**15, {"to": "0x" + "22" * 20, "data": b"", "gas": 100_000}),  # gas x max fee above the balance
        (10**15, {"to": "0x" + "22" * 20, "data": b"", "gas": 70_000_000}),  # above the block gas limit
        (10**17, {"to": "0x" + "22" * 20, "data": b"", "gas": 20_000}),  # below the intrinsic gas
        (10**17, {"to": "0x" + "22" * 20, "data": b"", "gas": 20_000, "value": 10**17}),  # the balance check comes first
    ],
    ids=["value", "max-fee", "block-limit", "intrinsic", "value-before-intrinsic"],
)
def test_a_transaction_the_sender_cannot_pay_is_refused_as_on_eth_tester(eth: int, tx: dict) -> None:
    from eth_account import Account

    refusals = []
    for chain in (Chain.in_memory(seed=4), Chain.revm(seed=4)):
        poor = Account.from_key(b"\x07" * 32)
        chain.send_eth(poor.address, eth)
        before = (chain.block_number, chain.eth_balance(poor.address), chain.backend.pending_nonce(poor.address))
        refusals.append(_refusal(chain, poor, **tx))
        assert (chain.block_number, chain.eth_balance(poor.address), chain.backend.pending_nonce(poor.address)) == before
    assert refusals[1] == refusals[0]


@pytest.mark.parametrize("gas_price", [None, 7], ids=["eip1559", "legacy"])
def test_gas_is_paid_in_eth_as_on_eth_tester(gas_price: int | None) -> None:
    """The sender pays gas used x effective price; the fee recipient gets the part above
    the base fee (nothing at priority 0); cold and warm accesses cost the same."""
    figures = []
    for chain in (Chain.in_memory(seed=4), Chain.revm(seed=4)):
        chain.gas_price = gas_price
        deployment = deploy(chain)
        app = deployment.new_app(cnx=100 * CNX)
        gas = [int(deployment.token.transfer(app, deployment.task.address, CNX)["gasUsed"]) for _ in range(3)]
        figures.append((gas, chain.eth_balance(app.address), chain.eth_balance("0x" + "00" * 20), chain.eth_balance(chain.faucet.address)))
    assert figures[1] == figures[0]
    assert figures[0][0][0] > figures[0][0][1], "the first transfer to an empty balance costs more"


def test_a_revert_restores_eth_nonces_and_receipts(net: Deployment, app: LocalAccount) -> None:
    chain = net.chain
    before = (chain.eth_balance(app.address), chain.backend.pending_nonce(app.address), chain.block_number)
    snapshot = chain.snapshot()
    receipt = net.token.transfer(app, net.task.address, 1 * CNX)
    assert chain.find_receipt("0x" + bytes(receipt["transactionHash"]).hex()) is not None
    chain.revert(snapshot)
    assert (chain.eth_balance(app.address), chain.backend.pending_nonce(app.address), chain.block_number) == before
    assert chain.find_receipt("0x" + bytes(receipt["transactionHash"]).hex()) is None
    again = net.token.transfer(app, net.task.address, 1 * CNX)
    assert again["gasUsed"] == receipt["gasUsed"], "a reverted transaction leaves nothing warm"
    assert again["blockNumber"] == receipt["blockNumber"]
