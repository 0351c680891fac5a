"""The served in-memory chain's transaction pool and miner (anvil's mining modes).

Transactions are applied to py-evm's pending block as they become executable, so
the pending state (nonces, balances, `eth_call`/`eth_estimateGas` at "pending")
includes them; a transaction whose nonce is ahead of its sender's is *queued*
and applied when the gap fills, as geth, anvil and Hardhat do. A transaction
with the nonce of one still pending replaces it when it pays at least 10% more
(geth's price bump); the pending block is then rebuilt without the old one.

Mining modes, as anvil's: `automine` mines what is pending as soon as it is
there; `block_time` mines a block every that many seconds while no other block
was mined (an empty one if need be, so time passes on an idle chain); both may
be on together. A sender under automine waits for its transaction's block, so
a receipt is there when the hash comes back, as on anvil.

Block time. Blocks need strictly increasing timestamps (py-evm, like geth,
refuses equal ones), so a chain mining one block per transaction drifts ahead of
the wall clock under load. The miner avoids that by forming blocks: whatever
arrives while a block is being mined goes into the next one, and a block is not
mined while its timestamp would be more than `max_lead` seconds ahead of the
clock: it waits and keeps collecting transactions. Under any load the head is
then at most `max_lead` seconds ahead, and a quiet chain mines at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eth.abc import SignedTransactionAPI
from eth_utils import to_checksum_address
from eth_utils.exceptions import ValidationError as EvmValidationError

from hydrogen_harness.jsonrpc.feed import ChainFeed
from hydrogen_harness.jsonrpc.dev import DevClock
from hydrogen_harness.jsonrpc.errors import SERVER_ERROR, RpcError, transaction_refused

__all__ = ["MAX_LEAD", "Miner", "PoolTransaction"]

# Seconds the head may run ahead of the clock before blocks wait. A task takes five
# blocks in a row (approve, createTask, commitments, disclosures, report): five
# seconds let one run at full speed from an idle chain, and no load pushes further.
MAX_LEAD = 5
PRICE_BUMP = 10  # percent a replacement must pay more, on fee cap and tip (geth's default)
MAX_QUEUED = 1024  # future-nonce transactions held in all
_RECEIPT_WAIT = 30.0  # seconds an automined sender waits for its block at most


@dataclass(frozen=True)
class PoolTransaction:
    """A transaction in the pool: applied to the pending block, or queued."""

    tx_hash: str
    evm: SignedTransactionAPI
    sender: str

    @property
    def nonce(self) -> int:
        return int(self.evm.nonce)

    @property
    def fee_cap(self) -> int:
        return int(getattr(self.evm, "max_fee_per_gas", None) or self.evm.gas_price)

    @property
    def tip_cap(self) -> int:
        return int(getattr(self.evm, "max_priority_fee_per_gas", None) or self.evm.gas_price)

    def outbids(self, other: PoolTransaction) -> bool:
        bump = 100 + PRICE_BUMP
        return self.fee_cap * 100 >= other.fee_cap * bump and self.tip_cap * 100 >= other.tip_cap * bump


@dataclass
class _State:
    pending: list[PoolTransaction] = field(default_factory=list)  # in the pending block, in order
    queued: dict[str, dict[int, PoolTransaction]] = field(default_factory=dict)  # sender -> nonce -> tx
    announce: list[int] = field(default_factory=list)  # mined block numbers not yet published
    last_block_at: float = field(default_factory=time.monotonic)


class Miner:
    """The pool and the mining thread of one in-memory chain (an eth-tester PyEVM backend).

    Every method takes `lock`, the chain's lock. `after_block(number)` runs under it
    right after each block is mined, before anyone is told (the sandbox journals
    the block there, so an acknowledged transaction is on disk).
    """

    def __init__(
        self,
        pyevm: Any,
        lock: threading.RLock,
        clock: DevClock,
        feed: ChainFeed,
        *,
        automine: bool = True,
        block_time: float | None = None,
        max_lead: int = MAX_LEAD,
    ) -> None:
        if block_time is not None and block_time <= 0:
            raise ValueError(f"block_time must be positive seconds or None, got {block_time}")
        self._pyevm = pyevm
        self._lock = lock
        self._changed = threading.Condition(lock)
        self.clock = clock
        self.feed = feed
        self.automine = automine
        self.block_time = block_time
        self.max_lead = max_lead
        self.after_block: list[Callable[[int], None]] = []
        self._state = _State()
        self._stop = False
        self._thread: threading.Thread | None = None
        pyevm.on_mined.append(self._mined)

    @property
    def _chain(self) -> Any:
        return self._pyevm.chain

    # ------------------------------------------------------------ thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chain-miner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._stop:
                    return
                self._changed.wait(self._step())
                announce, self._state.announce = self._state.announce, []
            for number in announce:  # outside the lock: subscribers may read the chain
                self.feed.publish_block(number)

    def _step(self) -> float | None:
        """Mine if it is time; returns how long to wait before looking again (None: until told)."""
        state = self._state
        if state.announce:
            return 0.0
        waits: list[float] = []
        if self.automine and state.pending:
            ahead = int(self._chain.header.timestamp) - (self.clock.now() + self.max_lead)
            if ahead <= 0:
                self._mine()
                return 0.0
            waits.append(ahead - (time.time() % 1) + 0.001)  # until the clock's next second
        if self.block_time is not None:
            due = state.last_block_at + self.block_time - time.monotonic()
            # An idle block is for time to pass: none while the head is ahead of the
            # clock (it would be stamped a second after its parent and keep the lead).
            behind = int(self._chain.get_canonical_head().timestamp) - self.clock.now()
            if due <= 0 and behind < 0:
                self._pyevm.pin_pending_header()
                self._mine()
                return 0.0
            waits.append(max(due, behind + 1 - (time.time() % 1) + 0.001 if behind >= 0 else 0.0))
        return min(waits) if waits else None

    def _mine(self) -> None:
        self._pyevm.mine_blocks(1)

    def _mined(self, number: int) -> None:
        """py-evm mined block `number` (by us, evm_mine or the harness): the pending
        transactions are in it."""
        with self._changed:  # re-entrant: usually held already, not by the harness's own senders
            state = self._state
            state.pending = []
            state.last_block_at = time.monotonic()
            for hook in self.after_block:
                hook(number)
            state.announce.append(number)
            self._promote_all()
            self._changed.notify_all()

    # ------------------------------------------------------------ sending

    def submit(self, raw: bytes) -> str:
        """Take a signed transaction; returns its hash (under automine, once mined)."""
        with self._changed:
            tx = self._decode(raw)
            self._admit(tx)
            if not self.automine or not self._is_pending(tx.tx_hash):
                return tx.tx_hash
            self._changed.notify_all()
            deadline = time.monotonic() + _RECEIPT_WAIT
            while self._is_pending(tx.tx_hash) and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
        return tx.tx_hash

    def wait_mined(self, tx_hash: str, timeout: float = _RECEIPT_WAIT) -> bool:
        """Wait until `tx_hash` left the pool (mined or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.find(tx_hash) is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _decode(self, raw: bytes) -> PoolTransaction:
        if raw[:1] == b"\x03":
            raise RpcError(SERVER_ERROR, "transaction type not supported: blob transactions (type 3)")
        try:
            evm = self._chain.get_vm().get_transaction_builder().decode(raw)
            evm.validate()  # signature, intrinsic gas
            sender = to_checksum_address(evm.sender)
        except EvmValidationError as exc:
            text = str(exc)
            if "intrinsic" in text.lower():
                raise RpcError(SERVER_ERROR, f"intrinsic gas too low: {text}") from None
            raise RpcError(SERVER_ERROR, f"invalid transaction: {text}") from None
        except Exception as exc:  # undecodable bytes (rlp, signature): the client's fault
            raise RpcError(SERVER_ERROR, f"invalid transaction: rlp: {exc}") from None
        chain_id = evm.chain_id
        if chain_id is not None and chain_id != self._chain.chain_id:
            raise RpcError(SERVER_ERROR, f"invalid chain id for signer: have {chain_id} want {self._chain.chain_id}")
        if evm.gas > self._chain.header.gas_limit:
            raise RpcError(SERVER_ERROR, f"exceeds block gas limit: gas {evm.gas}, limit {self._chain.header.gas_limit}")
        return PoolTransaction("0x" + bytes(evm.hash).hex(), evm, sender)

    def _pending_nonce(self, sender: str) -> int:
        return int(self._chain.get_vm().state.get_nonce(bytes.fromhex(sender[2:])))

    def _admit(self, tx: PoolTransaction) -> None:
        state = self._state
        if self.find(tx.tx_hash) is not None:
            raise RpcError(SERVER_ERROR, "already known")
        expected = self._pending_nonce(tx.sender)
        if tx.nonce < expected:
            old = next((p for p in state.pending if p.sender == tx.sender and p.nonce == tx.nonce), None)
            if old is None:
                raise RpcError(SERVER_ERROR, f"nonce too low: next nonce {expected}, tx nonce {tx.nonce}")
            if not tx.outbids(old):
                raise RpcError(SERVER_ERROR, "replacement transaction underpriced")
            self._rebuild([tx if p is old else p for p in state.pending], refuse=tx)
            return
        if tx.nonce > expected:
            self._queue(tx)
            return
        self._apply(tx)
        self._promote(tx.sender)

    def _queue(self, tx: PoolTransaction) -> None:
        mine = self._state.queued.setdefault(tx.sender, {})
        old = mine.get(tx.nonce)
        if old is not None and not tx.outbids(old):
            raise RpcError(SERVER_ERROR, "replacement transaction underpriced")
        if old is None and sum(len(q) for q in self._state.queued.values()) >= MAX_QUEUED:
            raise RpcError(SERVER_ERROR, f"txpool is full: {MAX_QUEUED} queued transactions")
        self._check_funds(tx)
        mine[tx.nonce] = tx

    def _check_funds(self, tx: PoolTransaction) -> None:
        balance = int(self._chain.get_vm().state.get_balance(bytes.fromhex(tx.sender[2:])))
        cost = tx.evm.gas * tx.fee_cap + tx.evm.value
        if balance < cost:
            raise RpcError(
                SERVER_ERROR,
                f"insufficient funds for gas * price + value: address {tx.sender} have {balance} want {cost}",
            )

    def _apply(self, tx: PoolTransaction, announce: bool = True) -> None:
        """Apply an executable transaction to the pending block (stamped first if empty)."""
        if not self._state.pending:
            self._pyevm.pin_pending_header()
        try:
            self._chain.apply_transaction(tx.evm)
        except EvmValidationError as exc:
            raise transaction_refused(exc) from None
        self._state.pending.append(tx)
        if announce:
            self.feed.publish_pending(tx.tx_hash)

    def _promote(self, sender: str) -> None:
        """Apply the sender's queued transactions whose nonces are now next."""
        queued = self._state.queued.get(sender)
        while queued:
            tx = queued.pop(self._pending_nonce(sender), None)
            if tx is None:
                break
            try:
                self._apply(tx)
            except RpcError:
                continue  # it can no longer pay: dropped, as geth drops it
        if queued is not None and not queued:
            del self._state.queued[sender]

    def _promote_all(self) -> None:
        for sender in list(self._state.queued):
            self._promote(sender)

    def _rebuild(self, transactions: list[PoolTransaction], refuse: PoolTransaction | None = None) -> None:
        """Start the pending block again with `transactions` (a replacement, a new timestamp).
        If `refuse` cannot be applied, the old block is restored and its error raised."""
        before = list(self._state.pending)
        header = self._chain.header
        self._reset_pending(header.timestamp)
        for tx in transactions:
            try:
                self._apply(tx, announce=tx is refuse)
            except RpcError:
                if tx is refuse:
                    self._reset_pending(header.timestamp)
                    for old in before:
                        self._apply(old, announce=False)
                    raise
        if self.automine:
            self._changed.notify_all()

    def _reset_pending(self, timestamp: int) -> None:
        self._state.pending = []
        parent = self._chain.get_canonical_head()
        self._chain.header = self._chain.create_header_from_parent(parent)
        self._pyevm.next_timestamp = timestamp
        self._pyevm.pin_pending_header()

    # ------------------------------------------------------------ dev controls

    def set_next_timestamp(self, timestamp: int) -> None:
        """Stamp the pending block (its transactions are run again at that time); the
        clock continues from there, as anvil's does, so later blocks do not wait."""
        with self._changed:
            self.clock.continue_from(timestamp)
            pending = list(self._state.pending)
            self._reset_pending(timestamp)
            for tx in pending:
                try:
                    self._apply(tx, announce=False)
                except RpcError:
                    pass  # the new time made it invalid: dropped

    def set_automine(self, enabled: bool) -> None:
        with self._changed:
            self.automine = enabled
            self._changed.notify_all()

    def set_block_time(self, seconds: float | None) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError(f"block time must be positive, got {seconds}")
        with self._changed:
            self.block_time = seconds
            self._state.last_block_at = time.monotonic()
            self._changed.notify_all()

    def clear(self) -> None:
        """Forget every pending and queued transaction (after an evm_revert)."""
        with self._changed:
            self._state.pending = []
            self._state.queued = {}
            self._changed.notify_all()

    # ------------------------------------------------------------ reading

    def find(self, tx_hash: str) -> PoolTransaction | None:
        with self._lock:
            wanted = tx_hash.lower()
            for tx in self._state.pending:
                if tx.tx_hash == wanted:
                    return tx
            for queued in self._state.queued.values():
                for tx in queued.values():
                    if tx.tx_hash == wanted:
                        return tx
        return None

    def _is_pending(self, tx_hash: str) -> bool:
        return any(p.tx_hash == tx_hash for p in self._state.pending)

    def content(self) -> tuple[list[PoolTransaction], list[PoolTransaction]]:
        """The pending transactions in block order and the queued ones by sender and nonce."""
        with self._lock:
            queued = [tx for sender in sorted(self._state.queued) for _, tx in sorted(self._state.queued[sender].items())]
            return list(self._state.pending), queued

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the chain lock so nothing is mined meanwhile."""
        with self._changed:
            yield
