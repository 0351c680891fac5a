"""The sandbox's in-memory chain: shared under one lock, and kept across restarts.

Locking. eth-tester is not thread-safe, and in the sandbox the JSON-RPC server,
the Relay and the simulated nodes all reach the chain from their own threads.
`LockedTesterBackend` takes one re-entrant lock around every request web3 makes,
every eth-tester method and py-evm read `Chain` makes directly, and every clock
or mining operation, so each is atomic. The lock is per request, not per node
step: a node's step calls the Relay, whose thread reads the chain too, and
holding the lock across that call would deadlock.

Persistence. py-evm keeps its state in memory, so a restart would begin at
genesis again. `ChainJournal` writes every mined block (its timestamp and raw
transactions) to `chain.jsonl` in the state folder and, on the next start,
replays them into a fresh chain built with the same seed. The chain is
deterministic given its seed, the transactions and the timestamps, so the
replayed blocks have the very same hashes; the journal checks that block by
block and refuses one that does not match (written before a change to how the
harness builds blocks, or edited), rather than serving a different chain under
the same addresses.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from web3 import EthereumTesterProvider, Web3
from web3.types import RPCEndpoint, RPCError, RPCResponse, TxReceipt

from hydrogen_harness.chain.tester import TesterBackend
from hydrogen_harness.chain.chain import GENESIS_TIMESTAMP, Chain
from hydrogen_harness.jsonrpc.errors import RpcError
from hydrogen_harness.jsonrpc.pool import Miner
from hydrogen_harness.protocol.reverts import RevertError, revert_reason

__all__ = ["ChainJournal", "JournalCorrupt", "JournalMismatch", "LockedTesterBackend", "in_memory_chain"]

_FORMAT = 1


class _LockedProvider(EthereumTesterProvider):
    """web3's eth-tester provider with every request under `lock`, and transactions
    handed to the backend's miner once it has one (so the harness's own senders
    share the pool, the block forming and the journal with JSON-RPC clients)."""

    def __init__(self, backend: LockedTesterBackend) -> None:
        super().__init__(backend._raw_tester)
        self._backend = backend

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        miner = self._backend.miner
        if method == "eth_sendRawTransaction" and miner is not None:
            raw = params[0]
            raw_bytes = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
            try:
                return {"jsonrpc": "2.0", "id": 0, "result": miner.submit(raw_bytes)}
            except RpcError as exc:
                return {"jsonrpc": "2.0", "id": 0, "error": cast(RPCError, exc.to_json())}
        with self._backend.lock:
            return super().make_request(method, params)


class _LockedTester:
    """An EthereumTester whose every method call runs under `lock` (Chain calls some
    of them directly, bypassing web3, for speed)."""

    def __init__(self, tester: Any, lock: threading.RLock) -> None:
        self._tester = tester
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._tester, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return locked


class LockedTesterBackend(TesterBackend):
    """`TesterBackend` whose web3 requests, direct eth-tester and py-evm reads, clock
    and mining all run under one lock."""

    def __init__(self, seed: int, lock: threading.RLock, wall_clock: Callable[[], int], genesis_timestamp: int = GENESIS_TIMESTAMP) -> None:
        super().__init__(seed=seed, genesis_timestamp=genesis_timestamp, wall_clock=wall_clock)
        self.lock = lock
        self._raw_tester = self.tester
        self.tester = _LockedTester(self._raw_tester, lock)
        self.miner: Miner | None = None

    def web3(self) -> Web3:
        return Web3(_LockedProvider(self))

    def head(self) -> tuple[int, int]:
        with self.lock:
            return super().head()

    def block_timestamp(self, number: int) -> int:
        with self.lock:
            return super().block_timestamp(number)

    def block_hash(self, number: int) -> bytes | None:
        with self.lock:
            return super().block_hash(number)

    def logs(self, addresses: set[str], from_block: int, to_block: int, topics: Sequence[Any] | None) -> list[Any]:
        with self.lock:
            return super().logs(addresses, from_block, to_block, topics)

    def refresh(self) -> None:
        with self.lock:
            super().refresh()

    def send_raw(self, raw: bytes) -> str:
        # Through the miner once there is one: the harness's own senders share the pool,
        # the block forming and the journal with JSON-RPC clients.
        if self.miner is None:
            return super().send_raw(raw)
        try:
            return self.miner.submit(raw)
        except RpcError as exc:
            if exc.data is not None:
                raise RevertError(revert_reason(bytes.fromhex(exc.data.removeprefix("0x")))) from exc
            raise ValueError(exc.message) from exc

    def wait_receipt(self, tx_hash: str) -> TxReceipt:
        if self.miner is not None:
            self.miner.wait_mined(tx_hash)
        with self.lock:
            return super().wait_receipt(tx_hash)

    def mine_at(self, timestamp: int) -> int:
        with self.lock:
            return super().mine_at(timestamp)

    def set_next_timestamp(self, timestamp: int) -> None:
        if self.miner is not None:
            self.miner.set_next_timestamp(timestamp)  # runs what is pending again at that time
            return
        with self.lock:
            super().set_next_timestamp(timestamp)

    def snapshot(self) -> Any:
        with self.lock:
            return super().snapshot()

    def revert(self, snapshot_id: Any) -> None:
        with self.lock:
            super().revert(snapshot_id)


def in_memory_chain(seed: int, lock: threading.RLock, wall_clock: Callable[[], int]) -> Chain:
    """A fresh in-memory chain stamped by `wall_clock`, every access under `lock`."""
    backend = LockedTesterBackend(seed=seed, lock=lock, wall_clock=wall_clock)
    return Chain.on(backend, seed=seed)


class JournalMismatch(RuntimeError):
    """The journal does not describe a chain this code can rebuild."""


class JournalCorrupt(RuntimeError):
    """The journal is damaged beyond a torn last line: the chain cannot be rebuilt from it."""


@dataclass(frozen=True)
class _Entry:
    number: int
    block_hash: str
    timestamp: int
    transactions: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"n": self.number, "hash": self.block_hash, "ts": self.timestamp, "txs": list(self.transactions)})

    @classmethod
    def from_json(cls, line: str) -> _Entry:
        raw = json.loads(line)
        return cls(int(raw["n"]), str(raw["hash"]), int(raw["ts"]), tuple(raw["txs"]))


class ChainJournal:
    """Every block of an in-memory chain, on disk, to rebuild it on the next start."""

    def __init__(self, path: Path, seed: int) -> None:
        self.path = path
        self.seed = seed
        self._entries: list[_Entry] = []
        self.repaired: str | None = None  # what reading had to fix, if anything

    def _pyevm_chain(self, chain: Chain) -> Any:
        backend = chain.backend
        if not isinstance(backend, TesterBackend):
            raise TypeError("only an in-memory chain has a journal")
        return backend.pyevm.chain

    def _entry(self, pyevm_chain: Any, number: int) -> _Entry:
        block = pyevm_chain.get_canonical_block_by_number(number)
        return _Entry(
            number=number,
            block_hash="0x" + block.hash.hex(),
            timestamp=int(block.header.timestamp),
            transactions=tuple("0x" + tx.encode().hex() for tx in block.transactions),
        )

    def _read(self) -> list[_Entry]:
        """The journal's blocks. A last line cut short by a crash (no newline after it)
        is dropped and the file truncated before it, with `repaired` saying so; any
        other damage raises `JournalCorrupt`, since replaying past it would silently
        serve a different chain."""
        if not self.path.is_file():
            return []
        raw = self.path.read_bytes()
        *complete, tail = raw.split(b"\n")
        if not complete:  # even the header was torn: nothing was journaled
            self._truncate(0, f"its only line, {len(tail)} bytes, was cut short")
            return []
        try:
            header = json.loads(complete[0])
        except ValueError as exc:
            raise JournalCorrupt(f"{self.path} line 1 (its header) is damaged: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT or header.get("seed") != self.seed:
            seen = header if isinstance(header, dict) else {}
            raise JournalMismatch(
                f"{self.path} was written for seed {seen.get('seed')} (format {seen.get('format')}); "
                f"this sandbox runs seed {self.seed}"
            )
        entries: list[_Entry] = []
        for line_number, line in enumerate(complete[1:], start=2):
            entry = self._parse(line, len(entries) + 1)
            if entry is None:
                raise JournalCorrupt(f"{self.path} line {line_number} is damaged (block {len(entries) + 1} expected there)")
            entries.append(entry)
        if tail:
            torn = self._parse(tail, len(entries) + 1)
            if torn is not None:  # whole but for its newline
                entries.append(torn)
                with self.path.open("ab") as handle:
                    handle.write(b"\n")
            else:
                self._truncate(len(raw) - len(tail), f"its last line, {len(tail)} bytes, was cut short")
        return entries

    @staticmethod
    def _parse(line: bytes, number: int) -> _Entry | None:
        """The entry on `line` if it is whole and is block `number`, else None."""
        try:
            entry = _Entry.from_json(line.decode())
        except (ValueError, KeyError, TypeError):
            return None
        return entry if entry.number == number else None

    def _truncate(self, size: int, why: str) -> None:
        with self.path.open("r+b") as handle:
            handle.truncate(size)
            handle.flush()
            os.fsync(handle.fileno())
        self.repaired = f"{self.path}: {why} (a crash while writing); it was dropped"

    def replay(self, chain: Chain, progress: Callable[[int, int], None] | None = None) -> int:
        """Mine the journal's blocks into `chain` (fresh, same seed); returns how many.

        Raises `JournalMismatch` at the first block whose hash differs.
        """
        entries = self._read()
        pyevm_chain = self._pyevm_chain(chain)
        backend = chain.backend
        assert isinstance(backend, TesterBackend)
        tester = backend.tester
        for done, entry in enumerate(entries, start=1):
            try:
                backend.set_next_timestamp(entry.timestamp)
                for raw in entry.transactions:  # applied to the pending block, then mined together
                    backend.pyevm.send_raw_transaction(bytes.fromhex(raw[2:]))
                tester.mine_blocks(1)
            except Exception as exc:  # an edited or foreign journal: whatever py-evm refuses
                raise JournalMismatch(f"block {entry.number} could not be replayed: {exc}") from exc
            head = pyevm_chain.get_canonical_head()
            if head.block_number != entry.number or "0x" + head.hash.hex() != entry.block_hash:
                raise JournalMismatch(
                    f"block {entry.number} replayed as {'0x' + head.hash.hex()}, the journal says {entry.block_hash}"
                )
            if progress is not None:
                progress(done, len(entries))
        self._entries = entries
        return len(entries)

    def sync(self, chain: Chain) -> int:
        """Write the blocks mined since the last sync (rewriting after an evm_revert);
        returns how many were written. Call it with the chain's lock held."""
        pyevm_chain = self._pyevm_chain(chain)
        head = int(pyevm_chain.get_canonical_head().block_number)
        keep = min(len(self._entries), head)
        # Blocks differ from the journal only after a revert: find the first one.
        while keep and self._entry(pyevm_chain, keep).block_hash != self._entries[keep - 1].block_hash:
            keep -= 1
        new = [self._entry(pyevm_chain, n) for n in range(keep + 1, head + 1)]
        if keep == len(self._entries):
            if new:
                self._append(new)
        else:
            self._entries = self._entries[:keep]
            self._rewrite(new)
        self._entries.extend(new)
        return len(new)

    def _header(self) -> str:
        return json.dumps({"format": _FORMAT, "seed": self.seed})

    def _append(self, entries: list[_Entry]) -> None:
        if not self.path.exists():
            self._rewrite(entries)
            return
        with self.path.open("a") as handle:
            handle.write("".join(e.to_json() + "\n" for e in entries))
            handle.flush()
            os.fsync(handle.fileno())

    def _rewrite(self, extra: list[_Entry]) -> None:
        with _atomic_text(self.path) as handle:
            handle.write(self._header() + "\n")
            handle.write("".join(e.to_json() + "\n" for e in [*self._entries, *extra]))


@contextmanager
def _atomic_text(path: Path) -> Iterator[Any]:
    """Write `path` whole or not at all; owner-only (0600), as the state folder holds keys."""
    tmp = path.with_name(path.name + ".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
