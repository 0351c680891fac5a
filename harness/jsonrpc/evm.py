"""What the JSON-RPC endpoint reads straight from py-evm, where eth-tester falls short.

- `eth_call`: eth-tester charges every call gas at 1 gwei (so an unfunded sender,
  or the zero address clients use by default, cannot call a view) and hands back a
  revert reason already decoded, losing the raw revert data. geth charges a call
  only when the caller prices it, and returns the raw data; `execute_call` does
  the same: an unpriced call runs with a zero gas price on a zero base fee.
- `eth_getLogs`: eth-tester finds each receipt by scanning blocks back from the
  head, so reading old blocks is quadratic; `block_logs` reads a block's receipts
  directly (and caches them: a mined block never changes under its hash).
- headers: eth-tester pads `extraData`, so block hashes recomputed by clients
  would not match; `header` gives the real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.exceptions import HeaderNotFound, Revert, VMError
from eth.vm.spoof import SpoofTransaction
from eth_utils import to_canonical_address

from hydrogen_harness.chain.backend import topics_match
from hydrogen_harness.chain.block_logs import BlockLogIndex, LogRecord

__all__ = ["CallOutcome", "EvmReader", "LogQuery"]

_LOG_CACHE_BLOCKS = 4096


@dataclass(frozen=True)
class CallOutcome:
    """The result of a call: `output`, or a revert (`reverted`, `revert_data`), or
    another VM `error`."""

    output: bytes = b""
    gas_consumed: int = 0  # gas spent before the refund: what the limit must cover
    gas_used: int = 0  # after the refund, as a receipt says
    accessed: tuple[tuple[bytes, tuple[int, ...]], ...] = ()  # with record_access: addresses and slots, in order
    reverted: bool = False
    revert_data: bytes = b""
    error: str | None = None


@dataclass(frozen=True)
class LogQuery:
    """A log filter resolved to block numbers; `addresses` and topics as bytes."""

    from_block: int
    to_block: int
    addresses: frozenset[bytes] | None
    topics: tuple[tuple[bytes, ...] | None, ...]

    def matches(self, log: Mapping[str, Any]) -> bool:
        if self.addresses is not None and log["address"] not in self.addresses:
            return False
        return topics_match(log["topics"], self.topics)


def _tester_log(log: LogRecord) -> dict[str, Any]:
    """A log as eth-tester records it (snake_case keys, raw address bytes)."""
    return {
        "address": log.address,
        "topics": log.topics,
        "data": log.data,
        "block_number": log.block_number,
        "block_hash": log.block_hash,
        "transaction_hash": log.transaction_hash,
        "transaction_index": log.transaction_index,
        "log_index": log.log_index,
        "block_timestamp": log.block_timestamp,
    }


class EvmReader:
    """Reads headers, logs and call results from an eth-tester PyEVMBackend."""

    def __init__(self, pyevm: Any) -> None:
        self._pyevm = pyevm
        self._logs = BlockLogIndex(_tester_log, capacity=_LOG_CACHE_BLOCKS)

    @property
    def _chain(self) -> Any:
        return self._pyevm.chain

    # ------------------------------------------------------------ headers

    def head(self) -> BlockHeaderAPI:
        """The latest mined block's header."""
        return self._chain.get_canonical_head()

    def pending_header(self) -> BlockHeaderAPI:
        return self._chain.header

    def header(self, number: int) -> BlockHeaderAPI | None:
        try:
            return self._chain.get_canonical_block_header_by_number(number)
        except HeaderNotFound:
            return None

    def canonical_number(self, block_hash: bytes) -> int | None:
        """The number of the canonical block with this hash (None if unknown or not canonical)."""
        try:
            header = self._chain.get_block_header_by_hash(block_hash)
        except HeaderNotFound:
            return None
        canonical = self.header(header.block_number)
        if canonical is None or canonical.hash != block_hash or header.block_number > self.head().block_number:
            return None
        return int(header.block_number)

    # ------------------------------------------------------------ logs

    def block_logs(self, number: int) -> list[dict[str, Any]]:
        """Every log of a mined block, with block-wide log indexes, as eth-tester-style records."""
        header = self.header(number)
        if header is None:
            return []
        return self._logs.get(self._chain, number, header.hash)

    def logs(self, query: LogQuery) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for number in range(query.from_block, query.to_block + 1):
            found.extend(log for log in self.block_logs(number) if query.matches(log))
        return found

    # ------------------------------------------------------------ calls

    def execute_call(
        self, fields: Mapping[str, Any], header: BlockHeaderAPI, priced: bool, record_access: bool = False
    ) -> CallOutcome:
        """Run a call on the state after `header`'s block, in that block's context.

        `fields` uses eth-tester's keys (from, to, data, gas, value, gas_price,
        max_fee_per_gas, max_priority_fee_per_gas, nonce, access_list). Raises py-evm's
        ValidationError for a call the sender cannot pay for (priced calls only).
        With `record_access`, the outcome lists every address and storage slot the
        call warmed (EIP-2929), for eth_createAccessList.
        """
        if not priced:
            header = header.copy(base_fee_per_gas=0)
        vm = self._chain.get_vm(at_header=header)
        state = vm.state
        sender = to_canonical_address(fields["from"])
        to = to_canonical_address(fields["to"]) if fields.get("to") else b""
        payload = bytes.fromhex(str(fields.get("data", "0x"))[2:])
        gas = min(int(fields.get("gas", header.gas_limit)), header.gas_limit)
        nonce = int(fields.get("nonce", state.get_nonce(sender)))
        value = int(fields.get("value", 0))
        access_list = tuple(
            (to_canonical_address(entry["address"]), tuple(int(key, 16) for key in entry["storage_keys"]))
            for entry in fields.get("access_list", ())
        )
        if "max_fee_per_gas" in fields or "max_priority_fee_per_gas" in fields or access_list:
            tip = int(fields.get("max_priority_fee_per_gas", 0))
            max_fee = int(fields.get("max_fee_per_gas", 2 * (header.base_fee_per_gas or 0) + tip))
            unsigned = vm.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
                chain_id=self._chain.chain_id,
                nonce=nonce,
                max_priority_fee_per_gas=tip,
                max_fee_per_gas=max_fee,
                gas=gas,
                to=to,
                value=value,
                data=payload,
                access_list=access_list,
            )
        else:
            unsigned = vm.create_unsigned_transaction(
                nonce=nonce, gas_price=int(fields.get("gas_price", 0)), gas=gas, to=to, value=value, data=payload
            )
        if gas < unsigned.intrinsic_gas:
            return CallOutcome(error=f"intrinsic gas too low: have {gas}, want {unsigned.intrinsic_gas}")
        accessed = _record_access(state) if record_access else None
        snapshot = state.snapshot()
        try:
            computation: ComputationAPI = state.apply_transaction(SpoofTransaction(unsigned, from_=sender))
        finally:
            state.revert(snapshot)
        if computation.is_success:
            consumed = gas - computation.get_gas_remaining()
            return CallOutcome(
                output=bytes(computation.output),
                gas_consumed=consumed,
                gas_used=consumed - min(computation.get_gas_refund(), consumed // 5),
                accessed=tuple((a, tuple(slots)) for a, slots in accessed.items()) if accessed is not None else (),
            )
        error = computation.error
        if isinstance(error, Revert):
            raw = bytes(error.args[0]) if error.args and isinstance(error.args[0], (bytes, bytearray)) else b""
            return CallOutcome(reverted=True, revert_data=raw)
        return CallOutcome(error=_vm_error_text(error))


def _record_access(state: Any) -> dict[bytes, list[int]]:
    """Note every address and slot `state` marks warm from now on (this state object only:
    each call builds its own)."""
    accounts = state._account_db
    touched: dict[bytes, list[int]] = {}
    mark_address, mark_slot = accounts.mark_address_warm, accounts.mark_storage_warm

    def address_warm(address: bytes) -> None:
        touched.setdefault(bytes(address), [])
        mark_address(address)

    def slot_warm(address: bytes, slot: int) -> None:
        slots = touched.setdefault(bytes(address), [])
        if slot not in slots:
            slots.append(slot)
        mark_slot(address, slot)

    accounts.mark_address_warm = address_warm
    accounts.mark_storage_warm = slot_warm
    return touched


def _vm_error_text(error: VMError) -> str:
    text = str(error) or type(error).__name__
    return text[0].lower() + text[1:] if text else text
