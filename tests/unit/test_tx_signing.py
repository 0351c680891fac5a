"""`Chain` signs its transactions as eth-account does, byte for byte."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from hydrogen_harness.chain.tx_signing import sign_transaction

_ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: Account.from_key(b"\x01" * 12 + b).address)
_COMMON = {
    "chainId": st.sampled_from([1, 31337, 131277322940537]),
    "nonce": st.integers(0, 2**32),
    "gas": st.integers(21_000, 60_000_000),
    "value": st.integers(0, 2**96),
    "data": st.one_of(st.binary(max_size=300), st.binary(max_size=64).map(lambda b: "0x" + b.hex())),
}
_LEGACY = st.fixed_dictionaries({**_COMMON, "gasPrice": st.integers(0, 10**12)}, optional={"to": _ADDRESSES})
_DYNAMIC = st.fixed_dictionaries(
    {**_COMMON, "maxFeePerGas": st.integers(0, 10**12), "maxPriorityFeePerGas": st.integers(0, 10**9)}, optional={"to": _ADDRESSES}
)


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32).filter(lambda k: 0 < int.from_bytes(k, "big") < 2**255), tx=st.one_of(_LEGACY, _DYNAMIC))
def test_the_raw_bytes_and_hash_are_eth_accounts(key: bytes, tx: dict[str, Any]) -> None:
    expected = Account.from_key(key).sign_transaction(tx)
    assert sign_transaction(key, tx) == (bytes(expected.raw_transaction), bytes(expected.hash))


def test_other_shapes_are_left_to_eth_account() -> None:
    key = b"\x05" * 32
    assert sign_transaction(key, {"nonce": 0, "gas": 21_000, "value": 0, "data": b"", "gasPrice": 1}) is None  # no chain id
    tx = {"chainId": 1, "nonce": 0, "gas": 21_000, "value": 0, "data": b"", "maxFeePerGas": 1, "maxPriorityFeePerGas": 0}
    assert sign_transaction(key, {**tx, "accessList": []}) is None


_RLP_ITEMS = st.recursive(
    st.one_of(st.integers(0, 2**256 - 1), st.binary(max_size=80)), lambda inner: st.lists(inner, max_size=6), max_leaves=20
)


@settings(max_examples=300, deadline=None)
@given(item=_RLP_ITEMS)
def test_rlp_encoding_is_the_rlp_packages(item: Any) -> None:
    import rlp

    from hydrogen_harness.chain.tx_signing import rlp_encode

    assert rlp_encode(item) == rlp.encode(item)
