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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.types import FilterParams, TxParams, TxReceipt

from hydrogen_harness.chain.tester import EvmBackend, RpcBackend, TesterBackend
from hydrogen_harness.protocol.reverts import RevertError, decode_revert, revert_reason
from hydrogen_harness.chain.revm import RevmBackend

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
        return to_checksum_address(value)
    return value


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction, ready to send (or to persist and resend)."""

    sender: str
    tx: dict[str, Any]
    raw: bytes
    tx_hash: str


@dataclass
class Chain:
    """A chain the harness can drive: web3, a backend, a clock and funded accounts.

    Build one with `Chain.in_memory(seed=...)` or `Chain.from_rpc(url)`.
    """

    w3: Web3
    backend: EvmBackend
    faucet: LocalAccount
    seed: int = 0
    gas_price: int | None = None

    def __post_init__(self) -> None:
        self._nonces: dict[str, int] = {}
        self._accounts_made = 0
        # Reverting also rewinds the account counter, so a test run after a revert
        # gets the same accounts whatever ran before it.
        self._accounts_at: dict[Any, int] = {}
        self.chain_id: int = self.backend.chain_id if isinstance(self.backend, RevmBackend) else self.w3.eth.chain_id
        self.keep_nonces = isinstance(self.backend, TesterBackend)

    # ------------------------------------------------------------ construction

    @classmethod
    def in_memory(
        cls, seed: int = 0, genesis_timestamp: int = GENESIS_TIMESTAMP, wall_clock: Callable[[], int] | None = None
    ) -> Chain:
        """A fresh in-memory chain whose blocks depend only on `seed` and what is sent
        (and, with `wall_clock`, on the time: see `TesterBackend`)."""
        backend = TesterBackend(seed=seed, genesis_timestamp=genesis_timestamp, wall_clock=wall_clock)
        faucet = Account.from_key(backend.faucet_key)
        return cls(w3=backend.web3(), backend=backend, faucet=faucet, seed=seed)

    @classmethod
    def revm(cls, seed: int = 0, genesis_timestamp: int = GENESIS_TIMESTAMP) -> Chain:
        """A chain on revm with no transactions or blocks underneath (see
        `hydrogen_harness.chain.revm`): the same contracts and bindings, many times faster;
        for property tests, not for serving clients."""
        backend = RevmBackend(seed=seed, genesis_timestamp=genesis_timestamp)
        return cls(w3=backend.web3(), backend=backend, faucet=Account.from_key(backend.faucet_key), seed=seed)

    @classmethod
    def from_rpc(cls, url: str, faucet_key: str | bytes, seed: int = 0) -> Chain:
        """A chain served over JSON-RPC (anvil, a devnet); `faucet_key` pays for set-up."""
        backend = RpcBackend(url)
        return cls(w3=backend.web3(), backend=backend, faucet=Account.from_key(faucet_key), seed=seed)

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
        if isinstance(self.backend, RevmBackend):
            return self.backend.balance(address)
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

    # ------------------------------------------------------------ transactions

    def _next_nonce(self, address: str) -> int:
        if isinstance(self.backend, RevmBackend):
            return 0  # revm runs calls, not transactions: nonces play no part
        if not self.keep_nonces:
            return int(self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))
        nonce = self._nonces.get(address)
        if nonce is None:
            nonce = int(self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))
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

    def sign(
        self,
        sender: LocalAccount,
        *,
        to: str | None,
        data: bytes | str,
        value: int = 0,
        gas: int = DEFAULT_GAS,
    ) -> SignedTransaction:
        """Sign a transaction without sending it (its hash is known before it is sent,
        which lets an application persist it first and never pay twice)."""
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": self._next_nonce(sender.address),
            "gas": gas,
            "value": value,
            "data": data,
            **self._fees(),
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        if isinstance(self.backend, RevmBackend):
            return SignedTransaction(sender=sender.address, tx=tx, raw=b"", tx_hash="")
        signed = sender.sign_transaction(tx)
        return SignedTransaction(
            sender=sender.address,
            tx=tx,
            raw=bytes(signed.raw_transaction),
            tx_hash="0x" + bytes(signed.hash).hex(),
        )

    def send_signed(self, signed: SignedTransaction, label: str = "") -> TxReceipt:
        """Send a signed transaction; return the receipt or raise `RevertError`."""
        if isinstance(self.backend, RevmBackend):
            tx = signed.tx
            data = tx["data"] if isinstance(tx["data"], bytes) else bytes.fromhex(str(tx["data"]).removeprefix("0x"))
            receipt, failure = self.backend.execute(signed.sender, tx.get("to"), data, tx["value"], tx["gas"])
            if failure is not None:
                raise RevertError(revert_reason(failure.revert_data), label=failure.describe(label), receipt=receipt)
            return receipt  # type: ignore[return-value]
        if isinstance(self.backend, TesterBackend):
            self.backend.refresh()
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw)
        except Exception as exc:
            self._nonces.pop(signed.sender, None)  # the node may not have taken the nonce
            reason = decode_revert(exc)
            if reason is not None:
                raise RevertError(reason, label=label) from exc
            raise
        return self.check_receipt(signed, self.backend.receipt(self.w3, tx_hash), label)

    def check_receipt(self, signed: SignedTransaction, receipt: TxReceipt, label: str = "") -> TxReceipt:
        if receipt["status"] != 1:
            reason = self._replay_reason(signed.sender, signed.tx, receipt["blockNumber"])
            raise RevertError(reason, label=label, receipt=receipt)
        return receipt

    def find_receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of a transaction if it was mined, else None."""
        if isinstance(self.backend, RevmBackend):
            return self.backend.receipt_of(tx_hash)  # type: ignore[return-value]
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def send(
        self,
        sender: LocalAccount,
        *,
        to: str | None,
        data: bytes | str,
        value: int = 0,
        gas: int = DEFAULT_GAS,
        label: str = "",
    ) -> TxReceipt:
        """Sign and send a transaction; return the receipt or raise `RevertError`."""
        signed = self.sign(sender, to=to, data=data, value=value, gas=gas)
        return self.send_signed(signed, label=label)

    def _replay_reason(self, sender: str, tx: dict[str, Any], block_number: int) -> str | None:
        call = {"from": sender, "data": tx["data"], "value": tx["value"], "gas": tx["gas"]}
        if "to" in tx:
            call["to"] = tx["to"]
        try:
            self.w3.eth.call(cast(TxParams, call), block_identifier=max(block_number - 1, 0))
        except Exception as exc:
            return decode_revert(exc)
        return None

    def transact(self, sender: LocalAccount, fn: Any, *, value: int = 0, gas: int = DEFAULT_GAS) -> TxReceipt:
        """Send a web3 ContractFunction call (e.g. `task.functions.createTask(h, d)`)."""
        data = fn._encode_transaction_data()
        return self.send(sender, to=fn.address, data=data, value=value, gas=gas, label=fn.fn_name)

    def call(self, fn: Any, sender: str | None = None, block: int | str = "latest") -> Any:
        """Call a view (or simulate a call), raising `RevertError` on a revert."""
        if isinstance(self.backend, TesterBackend):
            return self._tester_call(fn, sender, block)
        if isinstance(self.backend, RevmBackend):
            return self._revm_call(fn, sender, block)
        tx = {"to": fn.address, "data": fn._encode_transaction_data()}
        if sender:
            tx["from"] = sender
        try:
            return _decode_outputs(fn, bytes(self.w3.eth.call(tx, block_identifier=block)))  # type: ignore[arg-type]
        except Exception as exc:
            reason = decode_revert(exc)
            if reason is None:
                raise
            raise RevertError(reason, label=fn.fn_name) from exc

    def _revm_call(self, fn: Any, sender: str | None, block: int | str) -> Any:
        if block not in ("latest", "pending") and block != self.block_number:
            raise ValueError(f"the revm backend keeps no history: it cannot call at block {block}")
        data = bytes.fromhex(fn._encode_transaction_data().removeprefix("0x"))
        output, failure = self.backend.call(sender or self.faucet.address, fn.address, data)  # type: ignore[attr-defined]
        if failure is not None:
            raise RevertError(revert_reason(failure.revert_data), label=failure.describe(fn.fn_name))
        return _decode_outputs(fn, output)

    def _tester_call(self, fn: Any, sender: str | None, block: int | str) -> Any:
        # Straight to eth-tester: web3's request and result formatting cost twice
        # the call itself, and actors read views every step.
        from eth_tester.exceptions import TransactionFailed

        tx = {"from": sender or self.faucet.address, "to": fn.address, "data": fn._encode_transaction_data()}
        try:
            raw = self.backend.tester.call(tx, block)  # type: ignore[attr-defined]
        except TransactionFailed as exc:
            raise RevertError(decode_revert(exc), label=fn.fn_name) from exc
        return _decode_outputs(fn, bytes.fromhex(raw.removeprefix("0x")) if isinstance(raw, str) else bytes(raw))

    def deploy(self, sender: LocalAccount, abi: list[dict[str, Any]], bytecode: bytes, *args: Any, gas: int = 8_000_000) -> Any:
        """Deploy a contract; returns the web3 contract bound to its address."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send(sender, to=None, data=data, gas=gas, label="deploy")
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=abi)

    # ------------------------------------------------------------ blocks and clock

    @property
    def block_number(self) -> int:
        if isinstance(self.backend, (TesterBackend, RevmBackend)):
            return self.backend.head()[0]  # actors ask every step: skip web3's formatting
        return int(self.w3.eth.block_number)

    def now(self) -> int:
        """The timestamp of the latest block: the chain's idea of the present."""
        if isinstance(self.backend, (TesterBackend, RevmBackend)):
            return self.backend.head()[1]
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block `number`."""
        if isinstance(self.backend, (TesterBackend, RevmBackend)):
            return self.backend.block_timestamp(number)
        return int(self.w3.eth.get_block(number)["timestamp"])

    def advance(self, seconds: int) -> int:
        """Move the clock `seconds` forward by mining one block; returns the new time."""
        if seconds < 1:
            raise ValueError(f"advance needs a positive number of seconds, got {seconds}")
        return self.backend.mine_at(self.w3, self.now() + seconds)

    def set_next_timestamp(self, timestamp: int) -> None:
        """Stamp the next block with `timestamp` (later than the latest block)."""
        latest = self.now()
        if timestamp <= latest:
            raise ValueError(f"next block timestamp {timestamp} must be after the latest block's {latest}")
        self.backend.set_next_timestamp(self.w3, timestamp)

    def mine(self) -> int:
        """Mine an empty block one second on; returns its number."""
        self.backend.mine_at(self.w3, self.now() + 1)
        return self.block_number

    # ------------------------------------------------------------ isolation

    def snapshot(self) -> Any:
        snapshot_id = self.backend.snapshot(self.w3)
        self._accounts_at[snapshot_id] = self._accounts_made
        return snapshot_id

    def revert(self, snapshot_id: Any) -> None:
        self.backend.revert(self.w3, snapshot_id)
        self._nonces.clear()
        self._accounts_made = self._accounts_at.get(snapshot_id, self._accounts_made)

    def isolate(self) -> Callable[[], None]:
        """Take a snapshot and return a function that reverts to it."""
        snapshot_id = self.snapshot()
        return lambda: self.revert(snapshot_id)

    def logs(self, address: str | Sequence[str], from_block: int, to_block: int, topics: list[Any] | None = None) -> list[Any]:
        """eth_getLogs for one address or several, topics as in JSON-RPC (None: any)."""
        if isinstance(self.backend, (TesterBackend, RevmBackend)):
            addresses = {address.lower()} if isinstance(address, str) else {a.lower() for a in address}
            return self.backend.logs(addresses, from_block, to_block, topics)
        params: dict[str, Any] = {"fromBlock": from_block, "toBlock": to_block, "address": address}
        if topics:
            params["topics"] = topics
        return list(self.w3.eth.get_logs(cast(FilterParams, params)))
