"""The one seam under `Chain`: what a chain must do for the harness to drive it.

Three backends implement it: eth-tester over py-evm (`tester.TesterBackend`), revm
(`revm.RevmBackend`) and any JSON-RPC node with anvil's dev methods
(`rpc.RpcBackend`). `Chain` and everything above it talk only to this interface,
so none of them asks which backend it runs on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any, cast

from web3 import Web3
from web3.types import TxReceipt

from hydrogen_harness.protocol.reverts import RevertError

__all__ = ["Backend", "topics_match"]


class Backend(ABC):
    """A chain: blocks under a clock the harness sets, transactions, calls, logs, snapshots."""

    #: The chain id transactions are signed for.
    chain_id: int
    #: The key of an account funded at genesis (in-memory chains), else None.
    faucet_key: bytes | None = None
    #: True when only the harness sends from its accounts, so `Chain` may count nonces
    #: itself instead of asking the chain before every transaction.
    counts_own_nonces: bool = False

    @abstractmethod
    def web3(self) -> Web3:
        """A web3 instance on this chain (for users who want one; `Chain` needs none)."""

    # ------------------------------------------------------------ blocks and clock

    @abstractmethod
    def head(self) -> tuple[int, int]:
        """Number and timestamp of the latest mined block."""

    @abstractmethod
    def block_timestamp(self, number: int) -> int: ...

    @abstractmethod
    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number` as the chain is now; None if there is no such block."""

    @abstractmethod
    def mine_at(self, timestamp: int) -> int:
        """Mine one block stamped `timestamp`; returns the timestamp."""

    @abstractmethod
    def set_next_timestamp(self, timestamp: int) -> None: ...

    def refresh(self) -> None:
        """Called before a transaction is sent: a chain on the wall clock re-stamps its
        pending block here. Nothing to do on the harness clock."""

    # ------------------------------------------------------------ accounts and state

    @abstractmethod
    def balance(self, address: str) -> int:
        """ETH balance in wei, at the latest block."""

    @abstractmethod
    def code(self, address: str) -> bytes:
        """The contract code at `address` (empty for an account)."""

    @abstractmethod
    def pending_nonce(self, address: str) -> int:
        """The nonce the account's next transaction must carry."""

    # ------------------------------------------------------------ transactions

    @abstractmethod
    def send_raw(self, raw: bytes) -> str:
        """Submit a signed transaction; returns its hash. Raises `RevertError` when the
        chain refuses it with a revert reason (as nodes that estimate on submit do)."""

    @abstractmethod
    def wait_receipt(self, tx_hash: str) -> TxReceipt:
        """The receipt of a submitted transaction, once it is mined."""

    @cached_property
    def reader(self) -> Web3:
        """web3 on this chain, kept for the reads that want web3's shapes (receipts)."""
        return self.web3()

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of a mined transaction, or None."""
        from web3.exceptions import TransactionNotFound

        try:
            return self.reader.eth.get_transaction_receipt(cast(Any, tx_hash))
        except TransactionNotFound:
            return None

    def transaction_input(self, tx_hash: str) -> tuple[str | None, bytes]:
        """The recipient (None for a deployment) and the input data of a transaction."""
        tx = self.reader.eth.get_transaction(cast(Any, tx_hash))
        return tx.get("to"), bytes(tx["input"])

    @abstractmethod
    def call(self, tx: dict[str, Any], block: int | str) -> bytes:
        """Run a call (`from`, `to`, `data`, optional `value`/`gas`) at `block`; returns
        the output or raises `RevertError` with the decoded reason."""

    def failure(self, sender: str, tx: dict[str, Any], receipt: TxReceipt) -> tuple[str | None, str | None]:
        """Why a mined transaction failed: (revert reason, halt), where a halt (out of gas,
        call too deep) is named when the backend knows it. By default the transaction is
        replayed as a call on its parent block, as H-net's own clients read the reason."""
        call = {"from": sender, "data": tx["data"], "value": tx["value"], "gas": tx["gas"]}
        if "to" in tx:
            call["to"] = tx["to"]
        try:
            self.call(call, max(int(receipt["blockNumber"]) - 1, 0))
        except RevertError as exc:
            return exc.reason, None
        return None, None

    @abstractmethod
    def logs(self, addresses: set[str], from_block: int, to_block: int, topics: Sequence[Any] | None) -> list[Any]:
        """eth_getLogs over blocks [from_block, to_block] for lower-cased `addresses`,
        topics as in JSON-RPC; web3-shaped logs in chain order."""

    # ------------------------------------------------------------ isolation

    @abstractmethod
    def snapshot(self) -> Any: ...

    @abstractmethod
    def revert(self, snapshot_id: Any) -> None:
        """Back to `snapshot_id`, which is used up with every later snapshot."""


def topics_match(log_topics: Sequence[bytes], wanted: Sequence[Any] | None) -> bool:
    """eth_getLogs topic matching, as anvil does it: position by position, None is a
    wildcard (also past the log's last topic) and a list means any of its entries
    (entries as bytes or 0x-hex)."""
    for position, want in enumerate(wanted or ()):
        if want is None:
            continue
        if position >= len(log_topics):
            return False
        options: Iterable[Any] = want if isinstance(want, (list, tuple, frozenset, set)) else [want]
        have = bytes(log_topics[position])
        if not any(have == _as_bytes(option) for option in options):
            return False
    return True


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))
