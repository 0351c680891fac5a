"""web3 over the in-memory EVM (eth-tester + py-evm) or over any JSON-RPC URL.

`Chain` is the one place that sends transactions. It always gives an explicit gas
limit (estimating every transaction costs about 3x), then checks the receipt's
status, because a reverting transaction with an explicit gas limit is mined with
status 0 rather than raising. The revert reason is then read by replaying the call
on the parent block, as H-net's own clients do, and raised as `RevertError` on
both backends.

The harness owns the clock: the in-memory chain starts at a fixed genesis time,
each block is one second after its parent, and time moves further only through
`advance` or `set_next_timestamp`. Block randomness (`prevrandao`) comes from the
chain's seed, so two chains built with one seed produce identical blocks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Required, TypedDict, Unpack

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.types import TxReceipt

from hydrogen_harness.chain.backend import Backend
from hydrogen_harness.chain.tx_signing import sign_transaction
from hydrogen_harness.protocol.addresses import checksum
from hydrogen_harness.protocol.reverts import RevertError

__all__ = [
    "DEFAULT_GAS",
    "GENESIS_TIMESTAMP",
    "Chain",
    "RevertError",
    "SignedTransaction",
]

GENESIS_TIMESTAMP = 1_700_000_000  # 2023-11-14, the month H-net launched
DEFAULT_GAS = 3_000_000
ETH = 10**18


def _decode_outputs(fn: Any, raw: bytes) -> Any:
    """A call's return data decoded as web3 would (one value, or a list of them)."""
    from eth_abi import decode
    from eth_utils.abi import collapse_if_tuple

    outputs = fn.abi["outputs"]
    decoded = decode([collapse_if_tuple(output) for output in outputs], raw)
    values = [_checksummed(output, value) for output, value in zip(outputs, decoded)]
    return values[0] if len(values) == 1 else values


def _checksummed(abi_type: dict[str, Any], value: Any) -> Any:
    """Addresses in a decoded value as web3 gives them: checksummed."""
    kind: str = abi_type["type"]
    if kind.endswith("]"):
        inner = {**abi_type, "type": kind[: kind.rindex("[")]}
        return [_checksummed(inner, item) for item in value]
    if kind == "tuple":
        return tuple(_checksummed(c, v) for c, v in zip(abi_type["components"], value))
    if kind == "address":
        return checksum(value)
    return value


class TxFields(TypedDict, total=False):
    """What a caller says of a transaction; `Chain` adds the chain id, nonce and fees."""

    to: Required[str | None]  # None: a deployment
    data: Required[bytes | str]
    value: int  # wei; default 0
    gas: int  # default DEFAULT_GAS


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction, ready to send (or to persist and resend)."""

    sender: str
    tx: dict[str, Any]
    raw: bytes
    tx_hash: str


def calldata(fn: Any) -> bytes:
    """The input data of a bound call: a binding's `ContractCall`, or a web3
    `ContractFunction` a user built (web3 has no public encoder without a provider)."""
    data = getattr(fn, "data", None)
    if not isinstance(data, str):
        data = fn._encode_transaction_data()
    return bytes.fromhex(str(data).removeprefix("0x"))


@dataclass
class Chain:
    """A chain the harness can drive: a backend, a clock and funded accounts.

    Build one with `Chain.in_memory(seed=...)`, `Chain.revm(seed=...)` or
    `Chain.from_rpc(url, key)`.
    """

    backend: Backend
    faucet: LocalAccount
    seed: int = 0
    gas_price: int | None = None
    #: Whether `Chain` counts its accounts' nonces itself (the backend's
    #: `counts_own_nonces`); the sandbox turns it off, since its users' clients send from
    #: the same chain.
    keep_nonces: bool = field(init=False)

    def __post_init__(self) -> None:
        self._nonces: dict[str, int] = {}
        self._accounts_made = 0
        # Reverting also rewinds the account counter, so a test run after a revert
        # gets the same accounts whatever ran before it.
        self._accounts_at: dict[Any, int] = {}
        self.chain_id: int = self.backend.chain_id
        self.keep_nonces = self.backend.counts_own_nonces

    @cached_property
    def w3(self) -> Web3:
        """web3 on this chain, for code that wants one (contract objects, raw requests)."""
        return self.backend.web3()

    # ------------------------------------------------------------ construction

    @classmethod
    def in_memory(
        cls, seed: int = 0, genesis_timestamp: int = GENESIS_TIMESTAMP, wall_clock: Callable[[], int] | None = None
    ) -> Chain:
        """A fresh in-memory chain whose blocks depend only on `seed` and what is sent
        (and, with `wall_clock`, on the time: see `TesterBackend`)."""
        from hydrogen_harness.chain.tester import TesterBackend

        return cls.on(TesterBackend(seed=seed, genesis_timestamp=genesis_timestamp, wall_clock=wall_clock), seed=seed)

    @classmethod
    def revm(cls, seed: int = 0, genesis_timestamp: int = GENESIS_TIMESTAMP) -> Chain:
        """An in-memory chain on revm (see `hydrogen_harness.chain.revm`): the same
        contracts and bindings, many times faster."""
        from hydrogen_harness.chain.revm import RevmBackend

        return cls.on(RevmBackend(seed=seed, genesis_timestamp=genesis_timestamp), seed=seed)

    @classmethod
    def from_rpc(cls, url: str, faucet_key: str | bytes, seed: int = 0) -> Chain:
        """A chain served over JSON-RPC (anvil, a devnet); `faucet_key` pays for set-up."""
        from hydrogen_harness.chain.rpc import RpcBackend

        return cls(backend=RpcBackend(url), faucet=Account.from_key(faucet_key), seed=seed)

    @classmethod
    def on(cls, backend: Backend, seed: int = 0) -> Chain:
        """A chain over an in-memory `backend`, its genesis account as the faucet."""
        if backend.faucet_key is None:
            raise ValueError(f"{type(backend).__name__} has no funded genesis account: give a faucet key")
        return cls(backend=backend, faucet=Account.from_key(backend.faucet_key), seed=seed)

    # ------------------------------------------------------------ accounts

    def new_account(self, eth: int = 10 * ETH) -> LocalAccount:
        """A new account derived from the chain seed, funded with `eth` wei."""
        index = self._accounts_made
        self._accounts_made += 1
        key = keccak(f"hydrogen-harness:{self.seed}:{index}".encode())
        account: LocalAccount = Account.from_key(key)
        if eth:
            self.send_eth(account.address, eth)
        return account

    def send_eth(self, to: str, amount: int, sender: LocalAccount | None = None) -> TxReceipt:
        if amount < 0:
            raise ValueError(f"cannot send a negative amount of ETH: {amount}")
        return self.send(sender or self.faucet, to=to, data=b"", value=amount, gas=21_000)

    def eth_balance(self, address: str) -> int:
        return self.backend.balance(address)

    def code(self, address: str) -> bytes:
        """The contract code at `address` (empty: no contract there)."""
        return self.backend.code(address)

    # ------------------------------------------------------------ transactions

    def _next_nonce(self, address: str) -> int:
        if not self.keep_nonces:
            return self.backend.pending_nonce(address)
        nonce = self._nonces.get(address)
        if nonce is None:
            nonce = self.backend.pending_nonce(address)
        self._nonces[address] = nonce + 1
        return nonce

    def max_fee_per_gas(self) -> int:
        """The most a transaction sent by `send` may pay per unit of gas."""
        fees = self._fees()
        return fees.get("gasPrice", fees.get("maxFeePerGas", 0))

    def _fees(self) -> dict[str, int]:
        if self.gas_price is not None:
            return {"gasPrice": self.gas_price}
        return {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 0}

    def sign(self, sender: LocalAccount, **fields: Unpack[TxFields]) -> SignedTransaction:
        """Sign a transaction without sending it (its hash is known before it is sent,
        which lets an application persist it first and never pay twice)."""
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": self._next_nonce(sender.address),
            "gas": fields.get("gas", DEFAULT_GAS),
            "value": fields.get("value", 0),
            "data": fields["data"],
            **self._fees(),
        }
        to = fields["to"]
        if to is not None:
            tx["to"] = checksum(to)
        # eth-account's signing, byte for byte, without its formatting layers (see tx_signing).
        fast = sign_transaction(sender.key, tx) if isinstance(sender, LocalAccount) else None
        if fast is not None:
            raw, tx_hash = fast
        else:
            signed = sender.sign_transaction(tx)
            raw, tx_hash = bytes(signed.raw_transaction), bytes(signed.hash)
        return SignedTransaction(sender=sender.address, tx=tx, raw=raw, tx_hash="0x" + tx_hash.hex())

    def send_signed(self, signed: SignedTransaction, label: str = "") -> TxReceipt:
        """Send a signed transaction; return the receipt or raise `RevertError`."""
        self.backend.refresh()
        try:
            tx_hash = self.backend.send_raw(signed.raw)
        except RevertError as exc:
            self._nonces.pop(signed.sender, None)  # the node may not have taken the nonce
            raise RevertError(exc.reason, label=label) from exc
        except Exception:
            self._nonces.pop(signed.sender, None)
            raise
        return self.check_receipt(signed, self.backend.wait_receipt(tx_hash), label)

    def resend(self, raw: bytes) -> TxReceipt:
        """Send an already signed transaction again (after a restart, say) and wait for
        its receipt, whatever its status. Raises if the chain refuses it."""
        self.backend.refresh()
        return self.backend.wait_receipt(self.backend.send_raw(raw))

    def check_receipt(self, signed: SignedTransaction, receipt: TxReceipt, label: str = "") -> TxReceipt:
        if receipt["status"] != 1:
            reason, halt = self.backend.failure(signed.sender, signed.tx, receipt)
            raise RevertError(reason, label=f"{label} (halted: {halt})" if halt else label, receipt=receipt)
        return receipt

    def find_receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of a transaction if it was mined, else None."""
        return self.backend.receipt(tx_hash)

    def transaction_input(self, tx_hash: str) -> tuple[str | None, bytes]:
        """The recipient and input data of a mined transaction."""
        return self.backend.transaction_input(tx_hash)

    def send(self, sender: LocalAccount, *, label: str = "", **fields: Unpack[TxFields]) -> TxReceipt:
        """Sign and send a transaction; return the receipt or raise `RevertError`."""
        return self.send_signed(self.sign(sender, **fields), label=label)

    def transact(self, sender: LocalAccount, fn: Any, *, value: int = 0, gas: int = DEFAULT_GAS) -> TxReceipt:
        """Send a bound call (a binding's, or a web3 ContractFunction such as
        `task.functions.createTask(h, d)`)."""
        return self.send(sender, to=fn.address, data=calldata(fn), value=value, gas=gas, label=fn.fn_name)

    def call(self, fn: Any, sender: str | None = None, block: int | str = "latest") -> Any:
        """Call a view (or simulate a call), raising `RevertError` on a revert."""
        tx = {"from": sender or self.faucet.address, "to": fn.address, "data": calldata(fn)}
        try:
            raw = self.backend.call(tx, block)
        except RevertError as exc:
            raise RevertError(exc.reason, label=exc.label or fn.fn_name) from exc
        return _decode_outputs(fn, raw)

    def deploy(self, sender: LocalAccount, abi: list[dict[str, Any]], bytecode: bytes, *args: Any, gas: int = 8_000_000) -> Any:
        """Deploy a contract; returns the web3 contract bound to its address."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send(sender, to=None, data=data, gas=gas, label="deploy")
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=abi)

    # ------------------------------------------------------------ blocks and clock

    @property
    def block_number(self) -> int:
        return self.backend.head()[0]

    def now(self) -> int:
        """The timestamp of the latest block: the chain's idea of the present."""
        return self.backend.head()[1]

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block `number`."""
        return self.backend.block_timestamp(number)

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number` as the chain is now, None if it has no such block."""
        return self.backend.block_hash(number)

    def advance(self, seconds: int) -> int:
        """Move the clock `seconds` forward by mining one block; returns the new time."""
        if seconds < 1:
            raise ValueError(f"advance needs a positive number of seconds, got {seconds}")
        return self.backend.mine_at(self.now() + seconds)

    def set_next_timestamp(self, timestamp: int) -> None:
        """Stamp the next block with `timestamp` (later than the latest block)."""
        latest = self.now()
        if timestamp <= latest:
            raise ValueError(f"next block timestamp {timestamp} must be after the latest block's {latest}")
        self.backend.set_next_timestamp(timestamp)

    def mine(self) -> int:
        """Mine an empty block one second on; returns its number."""
        self.backend.mine_at(self.now() + 1)
        return self.block_number

    # ------------------------------------------------------------ isolation

    def snapshot(self) -> Any:
        snapshot_id = self.backend.snapshot()
        self._accounts_at[snapshot_id] = self._accounts_made
        return snapshot_id

    def revert(self, snapshot_id: Any) -> None:
        self.backend.revert(snapshot_id)
        self._nonces.clear()
        self._accounts_made = self._accounts_at.get(snapshot_id, self._accounts_made)

    @contextlib.contextmanager
    def isolation(self) -> Iterator[Chain]:
        """Everything done inside the block is undone when it ends, however it ends::

            with chain.isolation():
                ...
        """
        snapshot_id = self.snapshot()
        try:
            yield self
        finally:
            self.revert(snapshot_id)

    def logs(self, address: str | Sequence[str], from_block: int, to_block: int, topics: list[Any] | None = None) -> list[Any]:
        """eth_getLogs for one address or several, topics as in JSON-RPC (None: any)."""
        addresses = {address.lower()} if isinstance(address, str) else {a.lower() for a in address}
        return self.backend.logs(addresses, from_block, to_block, topics)
