"""A fast in-memory chain: revm (Rust, through pyrevm) under the harness's block model.

Signed transactions are decoded and their sender recovered, then run straight on
revm's state: no state root is hashed and no block is RLP-encoded, which is where
web3 + eth-tester spend most of their time. The backend keeps the harness's block
model (one block per transaction, a clock one second per block that only the
harness moves, seeded `prevrandao`) and hands back receipts and logs shaped like
web3's, so the bindings and everything above them run unchanged on it. It does not
serve JSON-RPC.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.types import TxReceipt

from hydrogen_harness.chain.backend import Backend, topics_match
from hydrogen_harness.chain.determinism import BLOCK_GAS_LIMIT, mix_hash
from hydrogen_harness.protocol.reverts import RevertError, revert_reason

__all__ = ["Failure", "RevmBackend"]

FAUCET_KEY = (1).to_bytes(32, "big")  # the same faucet as eth-tester's first account
FAUCET_BALANCE = 10**24


@dataclass
class _Ledger:
    """Python-side chain history that revm does not keep: blocks, receipts, logs."""

    number: int
    timestamp: int
    next_timestamp: int | None = None
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    inputs: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    timestamps: dict[int, int] = field(default_factory=dict)


class RevmBackend(Backend):
    """See the module docstring. Snapshots pair a revm journal checkpoint with a
    copy of the Python-side history; they are reverted to at most once, newest
    first."""

    __test__ = False

    def __init__(self, seed: int, genesis_timestamp: int, chain_id: int = 131277322940537) -> None:
        import pyrevm
        from eth_account import Account

        self._pyrevm = pyrevm
        self.seed = seed
        self.chain_id = chain_id
        self.faucet_key = FAUCET_KEY
        self.counts_own_nonces = True
        self._nonces: dict[str, int] = {}
        self.evm = pyrevm.EVM(spec_id="PRAGUE", gas_limit=BLOCK_GAS_LIMIT)
        self.evm.set_balance(Account.from_key(FAUCET_KEY).address, FAUCET_BALANCE)
        self.state = _Ledger(number=0, timestamp=genesis_timestamp, timestamps={0: genesis_timestamp})
        self._snapshots: dict[int, tuple[Any, _Ledger, dict[str, int]]] = {}
        self._last_snapshot = 0
        self._pin_block()

    # ------------------------------------------------------------ blocks

    def _pending(self) -> tuple[int, int]:
        number = self.state.number + 1
        stamp = self.state.next_timestamp if self.state.next_timestamp is not None else self.state.timestamp + 1
        return number, stamp

    def _pin_block(self) -> None:
        number, stamp = self._pending()
        self.evm.set_block_env(
            self._pyrevm.BlockEnv(number=number, timestamp=stamp, prevrandao=mix_hash(self.seed, number), basefee=0, gas_limit=BLOCK_GAS_LIMIT)
        )

    def _mine(self) -> int:
        number, stamp = self._pending()
        self.state.number, self.state.timestamp, self.state.next_timestamp = number, stamp, None
        self.state.timestamps[number] = stamp
        self._pin_block()
        return number

    def head(self) -> tuple[int, int]:
        return self.state.number, self.state.timestamp

    def mine_at(self, timestamp: int) -> int:
        self.set_next_timestamp(timestamp)
        self._mine()
        return timestamp

    def set_next_timestamp(self, timestamp: int) -> None:
        self.state.next_timestamp = timestamp
        self._pin_block()

    def block_timestamp(self, number: int) -> int:
        return self.state.timestamps[number]

    # ------------------------------------------------------------ execution

    def block_hash(self, number: int) -> bytes | None:
        if number < 0 or number > self.state.number:
            return None
        return keccak(f"hydrogen-harness-revm-block:{self.seed}:{number}:{self.state.timestamps[number]}".encode())

    def send_raw(self, raw: bytes) -> str:
        from eth_account import Account

        tx = _decoded(raw)
        sender = Account.recover_transaction(raw)
        if tx["chainId"] not in (None, self.chain_id):
            raise ValueError(f"invalid chain id for signer: {tx['chainId']}, this chain is {self.chain_id}")
        expected = self.pending_nonce(sender)
        if tx["nonce"] != expected:
            raise ValueError(f"nonce {tx['nonce']} of {sender}: the account's next nonce is {expected}")
        self._nonces[sender] = expected + 1
        tx_hash = "0x" + keccak(raw).hex()
        self.execute(sender, tx["to"], tx["data"], tx["value"], tx["gas"], tx_hash=tx_hash)
        return tx_hash

    def execute(
        self, sender: str, to: str | None, data: bytes, value: int, gas: int, *, tx_hash: str | None = None
    ) -> tuple[dict[str, Any], Failure | None]:
        """Run one transaction in its own block; returns (receipt, how it failed or None)."""
        number, _ = self._pending()
        if tx_hash is None:
            tx_hash = "0x" + keccak(f"{self.seed}:{number}:{sender}:{data.hex()}".encode()).hex()
        failure: Failure | None = None
        created: str | None = None
        # revm drops a reverted call's changes itself; no checkpoint of ours is needed,
        # and an open one would break the LIFO order of the isolation snapshots.
        try:
            if to is None:
                created = to_checksum_address(self.evm.deploy(sender, data, value=value, gas=gas))
            else:
                self.evm.message_call(sender, to, data, value=value, gas=gas)
        except RuntimeError as exc:
            failure = _failure(str(exc))
        result = self.evm.result
        logs = []
        if failure is None and result is not None:
            for index, log in enumerate(result.logs):
                topics, payload = log.data
                logs.append(
                    {
                        "address": to_checksum_address(log.address),
                        "topics": [bytes(t) for t in topics],
                        "data": bytes(payload),
                        "blockNumber": number,
                        "logIndex": index,
                        "transactionHash": bytes.fromhex(tx_hash[2:]),
                        "transactionIndex": 0,
                    }
                )
        self._mine()
        receipt = {
            "status": 0 if failure is not None else 1,
            "blockNumber": number,
            "transactionHash": bytes.fromhex(tx_hash[2:]),
            "gasUsed": int(result.gas_used) if result is not None else 0,
            "logs": logs,
            "contractAddress": created,
            "from": sender,
            "to": to,
        }
        self.state.receipts[tx_hash] = receipt
        self.state.inputs[tx_hash] = (to, data)
        if failure is not None:
            self.state.failures[tx_hash] = failure
        self.state.logs.extend(logs)
        return receipt, failure

    def call(self, tx: dict[str, Any], block: int | str) -> bytes:
        """A call on the current state (revm keeps no history: only the head's)."""
        if block not in ("latest", "pending") and block != self.state.number:
            raise ValueError(f"the revm backend keeps no history: it cannot call at block {block}")
        data = tx.get("data", b"")
        data = data if isinstance(data, bytes) else bytes.fromhex(str(data).removeprefix("0x"))
        checkpoint = self.evm.snapshot()
        try:
            return bytes(self.evm.message_call(tx["from"], tx["to"], data, value=tx.get("value") or 0, gas=tx.get("gas") or 30_000_000))
        except RuntimeError as exc:
            failure = _failure(str(exc))
            raise RevertError(revert_reason(failure.revert_data), label=failure.describe("")) from None
        finally:
            self.evm.revert(checkpoint)

    def balance(self, address: str) -> int:
        return int(self.evm.get_balance(address))

    def code(self, address: str) -> bytes:
        return bytes(self.evm.get_code(to_checksum_address(address)) or b"")

    def pending_nonce(self, address: str) -> int:
        return self._nonces.get(to_checksum_address(address), 0)

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        return self.state.receipts.get(tx_hash)  # type: ignore[return-value]

    def wait_receipt(self, tx_hash: str) -> TxReceipt:
        return self.state.receipts[tx_hash]  # type: ignore[return-value]

    def failure(self, sender: str, tx: dict[str, Any], receipt: TxReceipt) -> tuple[str | None, str | None]:
        found = self.state.failures.get("0x" + bytes(receipt["transactionHash"]).hex())
        return (revert_reason(found.revert_data), found.halt) if found is not None else (None, None)

    def transaction_input(self, tx_hash: str) -> tuple[str | None, bytes]:
        return self.state.inputs[tx_hash]

    def logs(self, addresses: set[str], from_block: int, to_block: int, topics: Any) -> list[Any]:
        return [
            log
            for log in self.state.logs
            if from_block <= log["blockNumber"] <= to_block
            and log["address"].lower() in addresses
            and topics_match(log["topics"], topics)
        ]

    # ------------------------------------------------------------ isolation

    def snapshot(self) -> int:
        self._last_snapshot += 1
        self._snapshots[self._last_snapshot] = (self.evm.snapshot(), copy.deepcopy(self.state), dict(self._nonces))
        return self._last_snapshot

    def revert(self, snapshot_id: Any) -> None:
        """Back to the state of `snapshot_id`, which is used up with every later
        snapshot (as on anvil: take a new one to revert again).

        Each open revm checkpoint is one level of call depth, and revm's revert
        leaves only one level: later checkpoints are reverted first, newest first, so
        the depth returns to what it was. (Re-taking a checkpoint after each revert
        leaked a level per run, until every call halted with CallTooDeep after ~1024.)
        """
        if snapshot_id not in self._snapshots:
            raise ValueError(f"unknown snapshot {snapshot_id!r}: a snapshot can be reverted to once")
        for later in sorted((i for i in self._snapshots if i >= snapshot_id), reverse=True):
            checkpoint, state, nonces = self._snapshots.pop(later)
            self.evm.revert(checkpoint)
        self.state, self._nonces = state, nonces  # the last ones popped: snapshot_id's
        self._pin_block()

    def web3(self) -> Web3:
        return Web3()  # no provider: builds contract objects and encodes calls only


@dataclass(frozen=True)
class Failure:
    """How a call or transaction failed: a revert (with its data), or a halt."""

    revert_data: bytes  # empty for a halt, or a revert with no data
    halt: str | None = None  # revm's halt reason (OutOfGas, CallTooDeep, ...); None for a revert

    def describe(self, label: str) -> str:
        return f"{label} (halted: {self.halt})" if self.halt else label


def _failure(message: str) -> Failure:
    """pyrevm reports a revert as "Revert { gas_used: N, output: 0x... }" and a halt as
    "Halt { reason: OutOfGas(...), gas_used: N }"; anything else is a halt too."""
    marker = "output: 0x"
    start = message.find(marker)
    if message.lstrip().startswith("Revert") and start >= 0:
        digits = message[start + len(marker) :].split()[0].rstrip("},")
        try:
            return Failure(bytes.fromhex(digits))
        except ValueError:
            return Failure(b"")
    found = re.search(r"reason:\s*([A-Za-z]+)", message)
    return Failure(b"", halt=found.group(1) if found else message.strip()[:80] or "unknown")


def _decoded(raw: bytes) -> dict[str, Any]:
    """The fields of a signed transaction (legacy or typed) that running it needs."""
    from eth_account._utils.legacy_transactions import Transaction
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    if raw and raw[0] < 0x80:
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        chain_id = fields.get("chainId")
    else:
        fields = Transaction.from_bytes(raw).as_dict()
        v = int(fields["v"])
        chain_id = (v - 35) // 2 if v >= 35 else None  # EIP-155
    to = bytes(fields.get("to") or b"")
    return {
        "chainId": chain_id,
        "nonce": int(fields["nonce"]),
        "to": to_checksum_address(to) if to else None,
        "data": bytes(fields.get("data") or b""),
        "value": int(fields.get("value", 0)),
        "gas": int(fields["gas"]),
    }
