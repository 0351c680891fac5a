"""The JSON-RPC methods the sandbox serves over the in-memory chain.

`EthRpc.call(method, params)` answers one request in the wire format of geth
(see `rpc_wire`), raising `RpcError` with geth's codes and messages, so that
web3.py, ethers and go-ethereum clients cannot tell the sandbox from a node:

- the standard methods H-net's node and app use (PROTOCOL.md 7) and the ones
  client libraries call on their own (fee estimates, filters, block lookups);
- reverts as geth reports them: code 3, "execution reverted: <reason>", and the
  raw revert data (the Error(string) payload) in `data`;
- dev methods under anvil's and hardhat's names: evm_snapshot/evm_revert,
  evm_mine, evm_increaseTime, evm_setNextBlockTimestamp, anvil_mine/hardhat_mine.

eth-tester is not thread-safe, so every call runs under one lock, which the
sandbox shares with everything else that touches the chain. Functions in
`on_revert` run after a successful evm_revert, outside the lock (the sandbox
resets its Relay and nodes there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from eth.abc import BlockHeaderAPI
from eth_tester.exceptions import BlockNotFound, TransactionNotFound
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils import keccak, to_checksum_address
from eth_utils.exceptions import ValidationError as EvmValidationError

from hydrogen_harness.chain.tester import TesterBackend
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.jsonrpc.feed import ChainFeed
from hydrogen_harness.jsonrpc.dev import SELF_LOCKING, DevClock, DevMethods
from hydrogen_harness.jsonrpc.errors import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    SERVER_ERROR,
    RpcError,
    expect_params,
    revert_error,
    transaction_refused,
)
from hydrogen_harness.jsonrpc.estimate import estimate_gas
from hydrogen_harness.jsonrpc.evm import CallOutcome, EvmReader
from hydrogen_harness.jsonrpc.logs import LogMethods
from hydrogen_harness.jsonrpc.pool import Miner, PoolTransaction
from hydrogen_harness.jsonrpc.wire import (
    CallRequest,
    WireError,
    block_to_wire,
    data,
    parse_address,
    parse_block_id,
    parse_bool,
    parse_call,
    parse_data,
    parse_hash,
    parse_quantity,
    pool_transaction_to_wire,
    quantity,
    receipt_to_wire,
    transaction_to_wire,
)

__all__ = ["CLIENT_VERSION", "EthRpc"]

CLIENT_VERSION = "hydrogen-harness/v0.1.0/python/eth-tester"
MAX_BLOB_GAS = 9 * 131_072  # Prague: 9 blobs of 128 KiB a block
GAS_PRICE = 1  # wei: the chain's base fee, which stays at 1 wei (see hydrogen_harness.chain.tester)
_REVERT_METHODS = ("evm_revert", "anvil_revert")
# The miner takes the chain lock itself and waits for the block without holding it.
_SELF_LOCKING = SELF_LOCKING | {"eth_sendRawTransaction"}


def _constant(value: Any) -> Callable[[list[Any]], Any]:
    """A method of no params answering `value` (extra params refused, as geth refuses them)."""

    def answer(params: list[Any]) -> Any:
        expect_params(params, 0)
        return value

    return answer


def _percentiles(raw: Any) -> list[float]:
    """eth_feeHistory's reward percentiles: numbers rising from 0 to 100."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in raw):
        raise RpcError(INVALID_PARAMS, f"invalid params: reward percentiles must be a list of numbers, got {raw!r}"[:200])
    percentiles = [float(p) for p in raw]
    if any(not 0 <= p <= 100 for p in percentiles) or percentiles != sorted(percentiles):
        raise RpcError(INVALID_PARAMS, "invalid params: reward percentiles must rise from 0 to 100")
    return percentiles


class EthRpc:
    """See the module docstring. `chain` must be an in-memory chain."""

    def __init__(
        self,
        chain: Chain,
        *,
        lock: threading.RLock | None = None,
        clock: DevClock | None = None,
        miner: Miner | None = None,
    ) -> None:
        """Serve `chain`; without `miner`, one is made (automine, no interval) and started:
        `close()` stops it."""
        if not isinstance(chain.backend, TesterBackend):
            raise TypeError("EthRpc serves the in-memory chain; a JSON-RPC chain is already served by its node")
        self.chain = chain
        self.backend: TesterBackend = chain.backend
        self.tester = chain.backend.tester
        self.evm = EvmReader(chain.backend.pyevm)
        self.lock = lock if lock is not None else threading.RLock()
        self.clock = clock or DevClock()
        self.on_revert: list[Callable[[], None]] = []
        self._own_miner = miner is None
        if miner is None:
            miner = Miner(chain.backend.pyevm, self.lock, self.clock, ChainFeed())
            miner.start()
        self.miner = miner
        self.feed = miner.feed  # new blocks and pending transactions, for subscribers
        self._handlers: dict[str, Callable[[list[Any]], Any]] = {
            # node identity
            "web3_clientVersion": _constant(CLIENT_VERSION),
            "web3_sha3": lambda p: data(keccak(hexstr=parse_data(expect_params(p, 1)[0]))),
            "net_version": _constant(str(self.chain.chain_id)),
            "net_listening": _constant(True),
            "net_peerCount": _constant("0x0"),
            "eth_chainId": _constant(quantity(self.chain.chain_id)),
            "eth_syncing": _constant(False),
            "eth_mining": _constant(False),
            "eth_hashrate": _constant("0x0"),
            "eth_coinbase": _constant("0x" + "00" * 20),
            "eth_accounts": _constant([]),
            # fees
            "eth_gasPrice": _constant(quantity(GAS_PRICE)),
            "eth_maxPriorityFeePerGas": _constant(quantity(0)),
            "eth_blobBaseFee": _constant(quantity(1)),
            "eth_feeHistory": self._fee_history,
            # blocks
            "eth_blockNumber": lambda p: (expect_params(p, 0), quantity(self.evm.head().block_number))[1],
            "eth_getBlockByNumber": self._block_by_number,
            "eth_getBlockByHash": self._block_by_hash,
            "eth_getBlockTransactionCountByNumber": self._tx_count_by_number,
            "eth_getBlockTransactionCountByHash": self._tx_count_by_hash,
            "eth_getBlockReceipts": self._block_receipts,
            "eth_getUncleCountByBlockNumber": lambda p: "0x0",
            "eth_getUncleCountByBlockHash": lambda p: "0x0",
            # state
            "eth_getBalance": self._balance,
            "eth_getCode": self._code,
            "eth_getStorageAt": self._storage,
            "eth_getTransactionCount": self._nonce,
            # transactions
            "eth_sendRawTransaction": self._send_raw,
            "eth_sendTransaction": self._send_unsigned,
            "eth_getTransactionByHash": self._tx_by_hash,
            "eth_getTransactionByBlockNumberAndIndex": self._tx_by_number_and_index,
            "eth_getTransactionByBlockHashAndIndex": self._tx_by_hash_and_index,
            "eth_getTransactionReceipt": self._receipt,
            "eth_call": self._call,
            "eth_estimateGas": self._estimate_gas,
            "eth_createAccessList": self._create_access_list,
            # the pool
            "txpool_status": self._txpool_status,
            "txpool_content": self._txpool_content,
            "txpool_inspect": self._txpool_inspect,
        }
        self.logs = LogMethods(self.evm, self.feed)
        self._handlers.update(self.logs.handlers())
        self._handlers.update(DevMethods(chain, self.evm, self.clock, self.miner).handlers())

    def close(self) -> None:
        """Stop the miner this endpoint made (one passed in belongs to the caller)."""
        if self._own_miner:
            self.miner.stop()

    @property
    def methods(self) -> list[str]:
        return sorted(self._handlers)

    def call(self, method: str, params: Any = None) -> Any:
        """Answer one request: the result in wire format, or `RpcError`."""
        handler = self._handlers.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, "params must be an array (named params are not supported)")
        try:
            if method in _SELF_LOCKING:
                result = handler(params)
            else:
                with self.lock:
                    result = handler(params)
        except WireError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from None
        except TesterValidationError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from None
        except BlockNotFound:
            raise RpcError(SERVER_ERROR, "header not found") from None
        if method in _REVERT_METHODS and result is True:
            for hook in list(self.on_revert):
                hook()
        return result

    # ------------------------------------------------------------ block ids

    def _head(self) -> int:
        return int(self.evm.head().block_number)

    def _number(self, raw: Any, default: str = "latest") -> int:
        """A block id resolved to a mined block's number (tags: the head; pending: the head too)."""
        block = parse_block_id(raw, default)
        if isinstance(block, dict):
            number = self.evm.canonical_number(bytes.fromhex(block["blockHash"][2:]))
            if number is None:
                raise RpcError(SERVER_ERROR, f"header for hash {block['blockHash']} not found")
            return number
        if block == "earliest":
            return 0
        if isinstance(block, str):
            return self._head()
        if block > self._head():
            raise RpcError(SERVER_ERROR, "header not found")
        return block

    def _state_block(self, raw: Any) -> str | int:
        """A block id for eth-tester's state getters, which take tags and mined block numbers."""
        block = parse_block_id(raw)
        return block if isinstance(block, str) else self._number(raw)

    # ------------------------------------------------------------ blocks

    def _full(self, block: dict[str, Any]) -> dict[str, Any]:
        """The block with its transactions as objects, each read by hash (eth-tester's own
        full blocks fail its validation for typed transactions). In the pending block they
        carry its number and their index, as geth and anvil give them."""
        txs = [self.tester.get_transaction_by_hash(h) for h in block["transactions"]]
        if block.get("hash") is None or any(tx.get("block_number") is None for tx in txs):
            txs = [{**tx, "block_number": block["number"], "transaction_index": i} for i, tx in enumerate(txs)]
        return {**block, "transactions": txs}

    def _block_at(self, number: int, full: bool) -> dict[str, Any]:
        block = self.tester.get_block_by_number(number, False)
        header = self.evm.header(number)
        return block_to_wire(self._full(block) if full else block, extra_data=header.extra_data if header is not None else None)

    def _block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        raw, full = expect_params(params, 2)
        full = parse_bool(full, "full transactions")
        if parse_block_id(raw) == "pending":
            block = self.tester.get_block_by_number("pending", False)
            block = self._full(block) if full else block
            return block_to_wire(block, extra_data=self.evm.pending_header().extra_data, pending=True)
        try:
            number = self._number(raw)
        except RpcError:
            return None  # geth answers null for a block it does not have
        return self._block_at(number, full)

    def _block_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        raw, full = expect_params(params, 2)
        full = parse_bool(full, "full transactions")
        number = self.evm.canonical_number(bytes.fromhex(parse_hash(raw, "block hash")[2:]))
        if number is None:
            return None
        return self._block_at(number, full)

    def _tx_count_by_number(self, params: list[Any]) -> str | None:
        block = self._block_by_number([expect_params(params, 1)[0], False])
        return quantity(len(block["transactions"])) if block is not None else None

    def _tx_count_by_hash(self, params: list[Any]) -> str | None:
        block = self._block_by_hash([expect_params(params, 1)[0], False])
        return quantity(len(block["transactions"])) if block is not None else None

    def _block_receipts(self, params: list[Any]) -> list[dict[str, Any]] | None:
        (raw,) = expect_params(params, 1)
        try:
            number = self._number(raw)
        except RpcError:
            return None
        hashes = self.tester.get_block_by_number(number, False)["transactions"]
        return [self._wire_receipt(self.tester.get_transaction_receipt(h)) for h in hashes]

    def _wire_receipt(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """A receipt whose logs carry block-wide indexes and the block's time, as geth's."""
        tx_hash = bytes.fromhex(str(receipt["transaction_hash"])[2:])
        logs = [log for log in self.evm.block_logs(int(receipt["block_number"])) if log["transaction_hash"] == tx_hash]
        return receipt_to_wire(receipt, logs)

    def _fee_history(self, params: list[Any]) -> dict[str, Any]:
        count_raw, newest_raw, percentiles_raw = expect_params(params, 2, 1)
        count = parse_quantity(count_raw, "block count")
        newest = self._number(newest_raw)
        percentiles = _percentiles(percentiles_raw)
        count = min(count, 1024, newest + 1)
        if count == 0:
            return {"oldestBlock": quantity(0), "baseFeePerGas": [], "gasUsedRatio": [], "baseFeePerBlobGas": [], "blobGasUsedRatio": []}
        oldest = newest - count + 1
        headers = [h for n in range(oldest, newest + 1) if (h := self.evm.header(n)) is not None]
        assert len(headers) == count  # _number keeps newest at or below the head
        following = self.evm.header(newest + 1) or self.evm.pending_header()
        history: dict[str, Any] = {
            "oldestBlock": quantity(oldest),
            "baseFeePerGas": [quantity(h.base_fee_per_gas or 0) for h in headers] + [quantity(following.base_fee_per_gas or 0)],
            "gasUsedRatio": [h.gas_used / h.gas_limit for h in headers],
            # Cancun's blob fields, as geth gives them: blobs never come here, so the blob
            # base fee stays at its minimum of 1 wei.
            "baseFeePerBlobGas": [quantity(1)] * (count + 1),
            "blobGasUsedRatio": [(getattr(h, "blob_gas_used", 0) or 0) / MAX_BLOB_GAS for h in headers],
        }
        if percentiles:
            history["reward"] = [self._rewards(h.block_number, h.base_fee_per_gas or 0, percentiles) for h in headers]
        return history

    def _rewards(self, number: int, base_fee: int, percentiles: list[float]) -> list[str]:
        """Tips paid at each gas-weighted percentile of a block, as geth computes them."""
        hashes = self.tester.get_block_by_number(number, False)["transactions"]
        paid = []
        for tx_hash in hashes:
            receipt = self.tester.get_transaction_receipt(tx_hash)
            paid.append((int(receipt.get("effective_gas_price") or 0) - base_fee, int(receipt["gas_used"])))
        if not paid:
            return [quantity(0)] * len(percentiles)
        paid.sort()
        total = sum(gas for _, gas in paid)
        rewards = []
        index, used = 0, paid[0][1]
        for p in percentiles:
            threshold = total * p / 100
            while used < threshold and index < len(paid) - 1:
                index += 1
                used += paid[index][1]
            rewards.append(quantity(max(paid[index][0], 0)))
        return rewards

    # ------------------------------------------------------------ state

    def _balance(self, params: list[Any]) -> str:
        address, block = expect_params(params, 2)
        return quantity(self.tester.get_balance(self._address(address), self._state_block(block)))

    def _code(self, params: list[Any]) -> str:
        address, block = expect_params(params, 2)
        return data(self.tester.get_code(self._address(address), self._state_block(block)))

    def _storage(self, params: list[Any]) -> str:
        address, slot, block = expect_params(params, 3)
        position = parse_quantity(slot, "storage slot") if not (isinstance(slot, str) and len(slot) == 66) else int(slot, 16)
        value = self.tester.get_storage_at(self._address(address), "0x" + position.to_bytes(32, "big").hex(), self._state_block(block))
        as_int = value if isinstance(value, int) else int(str(value), 16)
        return data(as_int.to_bytes(32, "big"))

    def _nonce(self, params: list[Any]) -> str:
        address, block = expect_params(params, 2)
        return quantity(self.tester.get_nonce(self._address(address), self._state_block(block)))

    @staticmethod
    def _address(raw: Any) -> str:
        return parse_address(raw)

    # ------------------------------------------------------------ transactions

    def _send_raw(self, params: list[Any]) -> str:
        (raw,) = expect_params(params, 1)
        payload = parse_data(raw, "raw transaction")
        if len(payload) < 4:
            raise RpcError(SERVER_ERROR, "invalid transaction: rlp: too short")
        return self.miner.submit(bytes.fromhex(payload[2:]))

    def _send_unsigned(self, params: list[Any]) -> str:
        raise RpcError(
            SERVER_ERROR,
            "unknown account: the sandbox holds no unlocked accounts; sign the transaction "
            "and send it with eth_sendRawTransaction",
        )

    def _tx_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        (raw,) = expect_params(params, 1)
        waiting = self.miner.find(parse_hash(raw, "transaction hash"))
        if waiting is not None:
            return pool_transaction_to_wire(waiting.evm, waiting.tx_hash, waiting.sender)
        try:
            return transaction_to_wire(self.tester.get_transaction_by_hash(parse_hash(raw, "transaction hash")))
        except TransactionNotFound:
            return None

    def _tx_in_block(self, block: dict[str, Any] | None, index_raw: Any) -> dict[str, Any] | None:
        index = parse_quantity(index_raw, "transaction index")
        if block is None or index >= len(block["transactions"]):
            return None
        tx: dict[str, Any] = block["transactions"][index]
        return tx

    def _tx_by_number_and_index(self, params: list[Any]) -> dict[str, Any] | None:
        raw, index = expect_params(params, 2)
        return self._tx_in_block(self._block_by_number([raw, True]), index)

    def _tx_by_hash_and_index(self, params: list[Any]) -> dict[str, Any] | None:
        raw, index = expect_params(params, 2)
        return self._tx_in_block(self._block_by_hash([raw, True]), index)

    def _receipt(self, params: list[Any]) -> dict[str, Any] | None:
        (raw,) = expect_params(params, 1)
        if self.miner.find(parse_hash(raw, "transaction hash")) is not None:
            return None  # eth-tester would describe it from the pending block
        try:
            return self._wire_receipt(self.tester.get_transaction_receipt(parse_hash(raw, "transaction hash")))
        except TransactionNotFound:
            return None

    def _context(self, raw: Any, default: str) -> BlockHeaderAPI:
        """The header a call runs under: the pending block's for "pending", else a mined one's."""
        if parse_block_id(raw, default) == "pending":
            return self.evm.pending_header()
        header = self.evm.header(self._number(raw, default))
        assert header is not None
        return header

    @staticmethod
    def _call_fields(request: CallRequest) -> dict[str, Any]:
        """A call's fields without those geth ignores in calls (nonce checks are skipped)."""
        return {k: v for k, v in request.fields.items() if k not in ("chain_id", "nonce")}

    def _run(self, fields: dict[str, Any], header: BlockHeaderAPI, priced: bool, record_access: bool = False) -> CallOutcome:
        """Execute a call; a sender who cannot pay is refused in geth's words."""
        try:
            return self.evm.execute_call(fields, header, priced=priced, record_access=record_access)
        except (EvmValidationError, TesterValidationError) as exc:
            raise transaction_refused(exc) from None

    @staticmethod
    def _succeeded(outcome: CallOutcome) -> CallOutcome:
        """The outcome, or its revert (code 3 with the data) or VM error raised as geth answers."""
        if outcome.reverted:
            raise revert_error(outcome.revert_data)
        if outcome.error is not None:
            raise RpcError(SERVER_ERROR, outcome.error)
        return outcome

    def _call(self, params: list[Any]) -> str:
        tx, block, overrides = expect_params(params, 1, 2)
        if overrides:
            raise RpcError(INVALID_PARAMS, "state overrides are not supported by the sandbox")
        request = parse_call(tx)
        header = self._context(block, "latest")
        return data(self._succeeded(self._run(self._call_fields(request), header, request.fees_given)).output)

    def _estimate_gas(self, params: list[Any]) -> str:
        """geth's binary search, by default in the pending block's context (as anvil):
        the next block's number, parent hash, time and prevrandao, after what is pending."""
        tx, block = expect_params(params, 1, 1)
        request = parse_call(tx)
        fields = self._call_fields(request)
        header = self._context(block, "pending")
        cap = min(int(fields.get("gas", header.gas_limit)), header.gas_limit)
        balance = int(self.backend.pyevm.chain.get_vm(at_header=header).state.get_balance(bytes.fromhex(request.sender[2:])))
        available = balance - int(fields.get("value", 0))
        if available < 0:
            raise RpcError(SERVER_ERROR, "insufficient funds for transfer")
        price = max(int(fields.get(k, 0)) for k in ("gas_price", "max_fee_per_gas"))
        if request.fees_given and price:
            cap = min(cap, available // price)  # what the sender can pay for, as geth caps it

        return quantity(estimate_gas(lambda gas: self._run({**fields, "gas": gas}, header, request.fees_given), cap))

    def _create_access_list(self, params: list[Any]) -> dict[str, Any]:
        """The addresses and slots the call touches, but for those every transaction warms
        anyway (sender, recipient, precompiles, coinbase), and the gas it uses with them,
        as geth's; by default in the pending block's context."""
        tx, block = expect_params(params, 1, 1)
        request = parse_call(tx)
        fields = self._call_fields(request)
        header = self._context(block, "pending")
        first = self._succeeded(self._run(fields, header, request.fees_given, record_access=True))
        warm_anyway = {bytes.fromhex(request.sender[2:]), bytes(header.coinbase), *(i.to_bytes(20, "big") for i in range(1, 0x12))}
        if fields.get("to"):
            warm_anyway.add(bytes.fromhex(str(fields["to"])[2:]))
        entries = [
            {"address": data(address), "storageKeys": [data(slot.to_bytes(32, "big")) for slot in slots]}
            for address, slots in first.accessed
            if address not in warm_anyway or slots
        ]
        listed = [{"address": e["address"], "storage_keys": tuple(e["storageKeys"])} for e in entries]
        second = self._run({**fields, "access_list": listed}, header, request.fees_given)
        return {"accessList": entries, "gasUsed": quantity(second.gas_used or first.gas_used)}

    # ------------------------------------------------------------ the pool

    def _txpool_status(self, params: list[Any]) -> dict[str, str]:
        expect_params(params, 0)
        pending, queued = self.miner.content()
        return {"pending": quantity(len(pending)), "queued": quantity(len(queued))}

    def _txpool_content(self, params: list[Any]) -> dict[str, Any]:
        expect_params(params, 0)
        return self._txpool_by_sender(lambda tx: pool_transaction_to_wire(tx.evm, tx.tx_hash, tx.sender))

    def _txpool_inspect(self, params: list[Any]) -> dict[str, Any]:
        expect_params(params, 0)

        def summary(tx: PoolTransaction) -> str:
            to = to_checksum_address(tx.evm.to) if tx.evm.to else "contract creation"
            return f"{to}: {tx.evm.value} wei + {tx.evm.gas} gas × {tx.fee_cap} wei"

        return self._txpool_by_sender(summary)

    def _txpool_by_sender(self, describe: Callable[[PoolTransaction], Any]) -> dict[str, Any]:
        """geth's layout: {"pending": {sender: {nonce: ...}}, "queued": {...}}."""
        out: dict[str, Any] = {}
        for name, txs in zip(("pending", "queued"), self.miner.content()):
            by_sender: dict[str, dict[str, Any]] = {}
            for tx in txs:
                by_sender.setdefault(tx.sender, {})[str(tx.nonce)] = describe(tx)
            out[name] = by_sender
        return out
