"""The CNX token (PROTOCOL.md 2.1): an ERC20 with OpenZeppelin's observable logs."""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import CNX, TOTAL_SUPPLY

TRANSFER = keccak(text="Transfer(address,address,uint256)")
APPROVAL = keccak(text="Approval(address,address,uint256)")
MAX_UINT = 2**256 - 1


def _topic_address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _log(log: Any) -> tuple[str, bytes, tuple[bytes, ...], int]:
    """(contract, topic0, other topics, uint256 data) of a token log."""
    topics = tuple(bytes(t) for t in log["topics"])
    (value,) = decode(["uint256"], bytes(log["data"]))
    return to_checksum_address(log["address"]), topics[0], topics[1:], value


def test_metadata_and_supply_minted_to_the_deployer(contracts: Deployment) -> None:
    token = contracts.token
    assert token.chain.call(token.contract.functions.name()) == "Crynux"
    assert token.chain.call(token.contract.functions.symbol()) == "CNX"
    assert token.chain.call(token.contract.functions.decimals()) == 18
    assert TOTAL_SUPPLY == 4_351_443_962 * 10**18
    assert token.total_supply() == TOTAL_SUPPLY
    assert token.balance_of(contracts.owner.address) == TOTAL_SUPPLY
    zero = "0x" + "00" * 20
    mints = contracts.chain.logs(token.address, 0, contracts.chain.block_number, [TRANSFER, _topic_address(zero)])
    assert [_log(m) for m in mints] == [
        (token.address, TRANSFER, (_topic_address(zero), _topic_address(contracts.owner.address)), TOTAL_SUPPLY)
    ]


def test_transfer_moves_exact_amount_and_logs_transfer(contracts: Deployment) -> None:
    alice, bob = contracts.new_account(cnx=100 * CNX), contracts.new_account()
    assert contracts.chain.call(contracts.token.contract.functions.transfer(bob.address, 1), sender=alice.address) is True
    receipt = contracts.token.transfer(alice, bob.address, 30 * CNX + 7)
    assert contracts.token.balance_of(alice.address) == 70 * CNX - 7
    assert contracts.token.balance_of(bob.address) == 30 * CNX + 7
    assert [_log(log) for log in receipt["logs"]] == [
        (contracts.token.address, TRANSFER, (_topic_address(alice.address), _topic_address(bob.address)), 30 * CNX + 7)
    ]
    assert contracts.token.total_supply() == TOTAL_SUPPLY


def test_transfer_of_more_than_the_balance_reverts(contracts: Deployment) -> None:
    alice, bob = contracts.new_account(cnx=5 * CNX), contracts.new_account()
    with expect_revert("ERC20: transfer amount exceeds balance"):
        contracts.token.transfer(alice, bob.address, 5 * CNX + 1)
    assert contracts.token.balance_of(alice.address) == 5 * CNX
    assert contracts.token.balance_of(bob.address) == 0
    contracts.token.transfer(alice, bob.address, 5 * CNX)  # the whole balance is fine
    assert contracts.token.balance_of(alice.address) == 0
    assert contracts.token.balance_of(bob.address) == 5 * CNX


def test_approve_sets_allowance_and_logs_approval(contracts: Deployment) -> None:
    alice, spender = contracts.new_account(), contracts.new_account()
    receipt = contracts.token.approve(alice, spender.address, 12 * CNX)
    assert contracts.token.allowance(alice.address, spender.address) == 12 * CNX
    assert [_log(log) for log in receipt["logs"]] == [
        (contracts.token.address, APPROVAL, (_topic_address(alice.address), _topic_address(spender.address)), 12 * CNX)
    ]
    contracts.token.approve(alice, spender.address, 3 * CNX)  # approve overwrites
    assert contracts.token.allowance(alice.address, spender.address) == 3 * CNX


def test_transfer_from_logs_new_allowance_before_transfer(contracts: Deployment) -> None:
    owner, spender, receiver = contracts.new_account(cnx=100 * CNX), contracts.new_account(), contracts.new_account()
    contracts.token.approve(owner, spender.address, 50 * CNX)
    receipt = contracts.token.transfer_from(spender, owner.address, receiver.address, 20 * CNX)
    assert [_log(log) for log in receipt["logs"]] == [
        (contracts.token.address, APPROVAL, (_topic_address(owner.address), _topic_address(spender.address)), 30 * CNX),
        (contracts.token.address, TRANSFER, (_topic_address(owner.address), _topic_address(receiver.address)), 20 * CNX),
    ]
    assert contracts.token.allowance(owner.address, spender.address) == 30 * CNX
    assert contracts.token.balance_of(owner.address) == 80 * CNX
    assert contracts.token.balance_of(receiver.address) == 20 * CNX
    assert contracts.token.balance_of(spender.address) == 0


def test_transfer_from_under_infinite_allowance_logs_only_transfer(contracts: Deployment) -> None:
    owner, spender = contracts.new_account(cnx=100 * CNX), contracts.new_account()
    contracts.token.approve(owner, spender.address, MAX_UINT)
    receipt = contracts.token.transfer_from(spender, owner.address, spender.address, 40 * CNX)
    assert [_log(log) for log in receipt["logs"]] == [
        (contracts.token.address, TRANSFER, (_topic_address(owner.address), _topic_address(spender.address)), 40 * CNX)
    ]
    assert contracts.token.allowance(owner.address, spender.address) == MAX_UINT
    assert contracts.token.balance_of(owner.address) == 60 * CNX
    assert contracts.token.balance_of(spender.address) == 40 * CNX


def test_transfer_from_spends_an_allowance_of_max_minus_one(contracts: Deployment) -> None:
    owner, spender = contracts.new_account(cnx=10 * CNX), contracts.new_account()
    contracts.token.approve(owner, spender.address, MAX_UINT - 1)
    receipt = contracts.token.transfer_from(spender, owner.address, spender.address, 1)
    assert [_log(log)[1] for log in receipt["logs"]] == [APPROVAL, TRANSFER]
    assert contracts.token.allowance(owner.address, spender.address) == MAX_UINT - 2


def test_transfer_from_beyond_allowance_reverts(contracts: Deployment) -> None:
    owner, spender = contracts.new_account(cnx=100 * CNX), contracts.new_account()
    with expect_revert("ERC20: insufficient allowance"):
        contracts.token.transfer_from(spender, owner.address, spender.address, 1)
    contracts.token.approve(owner, spender.address, 10 * CNX)
    with expect_revert("ERC20: insufficient allowance"):
        contracts.token.transfer_from(spender, owner.address, spender.address, 10 * CNX + 1)
    assert contracts.token.allowance(owner.address, spender.address) == 10 * CNX
    assert contracts.token.balance_of(owner.address) == 100 * CNX


def test_transfer_from_beyond_balance_reverts_after_the_allowance_check(contracts: Deployment) -> None:
    owner, spender = contracts.new_account(cnx=10 * CNX), contracts.new_account()
    contracts.token.approve(owner, spender.address, 50 * CNX)
    with expect_revert("ERC20: transfer amount exceeds balance"):
        contracts.token.transfer_from(spender, owner.address, spender.address, 11 * CNX)
    # Neither enough allowance nor balance: the allowance is checked first.
    with expect_revert("ERC20: insufficient allowance"):
        contracts.token.transfer_from(spender, owner.address, spender.address, 51 * CNX)
    assert contracts.token.allowance(owner.address, spender.address) == 50 * CNX
    assert contracts.token.balance_of(owner.address) == 10 * CNX
