"""Dev methods of the sandbox's chain, under anvil's names and hardhat's aliases.

evm_snapshot/evm_revert, evm_mine (optionally at a timestamp, or ganache's
{timestamp, blocks}), anvil_mine/hardhat_mine (count, interval),
evm_increaseTime and evm_setNextBlockTimestamp, and the mining modes
(evm_setAutomine, evm_setIntervalMining in seconds as anvil). Time is a
`DevClock`: wall time plus an offset, which the in-memory chain stamps its
blocks with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eth_tester.exceptions import SnapshotNotFound

from hydrogen_harness.chain.tester import TesterBackend
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.jsonrpc.errors import SERVER_ERROR, RpcError, expect_params
from hydrogen_harness.jsonrpc.evm import EvmReader
from hydrogen_harness.jsonrpc.wire import parse_bool, parse_quantity, quantity

if TYPE_CHECKING:
    from hydrogen_harness.jsonrpc.pool import Miner

__all__ = ["MAX_MINE", "SELF_LOCKING", "DevClock", "DevMethods"]

_MAX_TIMESTAMP = 2**63  # go-ethereum clients decode block timestamps as uint64
MAX_BLOCK_TIME = 86_400  # seconds: longer waits overflow the miner thread's timed wait
MAX_MINE = 10_000  # blocks one anvil_mine may ask for (each costs a few ms under the chain lock)
# Methods that take the chain lock themselves, piece by piece.
SELF_LOCKING = frozenset({"anvil_mine", "hardhat_mine"})


class DevClock:
    """The chain's clock: wall time plus the offset the dev methods add.

    Pass `clock.now` as the in-memory chain's `wall_clock`, so blocks are stamped
    with it; evm_increaseTime moves it forward, evm_setNextBlockTimestamp and
    evm_mine with a timestamp make it continue from that time, as anvil does.
    """

    def __init__(self, offset: int = 0, wall: Callable[[], float] = time.time) -> None:
        self.offset = offset
        self.increased = 0  # the seconds evm_increaseTime added in all, which anvil reports
        self._wall = wall

    def now(self) -> int:
        return int(self._wall()) + self.offset

    def advance(self, seconds: int) -> int:
        """Add `seconds` to the offset; returns the whole offset."""
        self.offset += seconds
        return self.offset

    def continue_from(self, timestamp: int) -> None:
        self.offset = timestamp - int(self._wall())


class DevMethods:
    """The handlers of the dev methods over an in-memory `chain` mined by `miner`."""

    def __init__(self, chain: Chain, evm: EvmReader, clock: DevClock, miner: Miner) -> None:
        assert isinstance(chain.backend, TesterBackend)
        self.chain = chain
        self.backend: TesterBackend = chain.backend
        self.evm = evm
        self.clock = clock
        self.miner = miner
        self._clock_at: dict[Any, tuple[int, int]] = {}  # snapshot id -> the clock then

    def handlers(self) -> dict[str, Callable[[list[Any]], Any]]:
        # Each method under every name anvil answers it by (evm_, anvil_, hardhat_).
        by_names: list[tuple[tuple[str, ...], Callable[[list[Any]], Any]]] = [
            (("evm_snapshot", "anvil_snapshot"), self._snapshot),
            (("evm_revert", "anvil_revert"), self._revert),
            (("evm_mine",), self._evm_mine),
            (("anvil_mine", "hardhat_mine"), self._anvil_mine),
            (("evm_increaseTime", "anvil_increaseTime"), self._increase_time),
            (("evm_setNextBlockTimestamp", "anvil_setNextBlockTimestamp"), self._set_next_timestamp),
            (("anvil_getAutomine", "hardhat_getAutomine"), lambda p: self.miner.automine),
            (("evm_setAutomine", "anvil_setAutomine"), self._set_automine),
            (("evm_setIntervalMining", "anvil_setIntervalMining"), self._set_interval),
            (("anvil_getIntervalMining",), lambda p: self.miner.block_time),
        ]
        return {name: handler for names, handler in by_names for name in names}

    def _snapshot(self, params: list[Any]) -> str:
        expect_params(params, 0)
        snapshot_id = self.chain.snapshot()
        self._clock_at[snapshot_id] = (self.clock.offset, self.clock.increased)  # oldest first
        return quantity(snapshot_id)

    def _revert(self, params: list[Any]) -> bool:
        (raw,) = expect_params(params, 1)
        try:
            # Chain.revert also forgets the nonces it cached for in-process senders.
            snapshot_id = parse_quantity(raw, "snapshot id")
            if snapshot_id not in self._clock_at:
                return False  # never taken here, or used up by an earlier revert
            self.chain.revert(snapshot_id)
        except SnapshotNotFound:
            return False
        self.miner.clear()  # pending transactions were applied on the abandoned head
        # Time moved by evm_increaseTime since the snapshot goes back too, as on anvil;
        # and as on anvil the snapshot is used up, with every later one.
        self.clock.offset, self.clock.increased = self._clock_at[snapshot_id]
        taken = list(self._clock_at)
        for later in taken[taken.index(snapshot_id):]:
            del self._clock_at[later]
        self.backend.refresh()
        return True

    def _latest_timestamp(self) -> int:
        return int(self.evm.head().timestamp)

    def _checked(self, timestamp: int) -> int:
        latest = self._latest_timestamp()
        if timestamp <= latest:
            raise RpcError(SERVER_ERROR, f"timestamp {timestamp} is not after the latest block's timestamp {latest}")
        if timestamp >= _MAX_TIMESTAMP:
            raise RpcError(SERVER_ERROR, f"timestamp {timestamp} is past 2**63")
        return timestamp

    def _mine_one(self, timestamp: int | None = None) -> None:
        if timestamp is None:
            self.backend.refresh()
            self.backend.tester.mine_blocks(1)
            return
        self.miner.set_next_timestamp(self._checked(timestamp))  # the clock continues from it
        self.backend.tester.mine_blocks(1)

    def _evm_mine(self, params: list[Any]) -> str:
        (raw,) = expect_params(params, 0, 1)
        blocks, timestamp = 1, None
        if isinstance(raw, dict):  # ganache's {timestamp, blocks}
            blocks = parse_quantity(raw.get("blocks", 1), "blocks")
            timestamp = parse_quantity(raw["timestamp"], "timestamp") if raw.get("timestamp") is not None else None
        elif raw is not None:
            timestamp = parse_quantity(raw, "timestamp")
        if blocks > MAX_MINE:
            raise RpcError(SERVER_ERROR, f"evm_mine: at most {MAX_MINE} blocks per call, got {blocks}")
        for index in range(blocks):
            self._mine_one(timestamp if index == 0 else None)
        return "0x0"

    def _anvil_mine(self, params: list[Any]) -> None:
        count_raw, interval_raw = expect_params(params, 0, 2)
        count = parse_quantity(count_raw, "block count") if count_raw is not None else 1
        interval = parse_quantity(interval_raw, "interval") if interval_raw is not None else None
        if count > MAX_MINE:
            raise RpcError(SERVER_ERROR, f"anvil_mine: at most {MAX_MINE} blocks per call, got {count}")
        if interval is not None and self._latest_timestamp() + count * max(interval, 1) >= _MAX_TIMESTAMP:
            raise RpcError(SERVER_ERROR, f"anvil_mine: {count} blocks {interval} s apart would pass timestamp 2**63")
        for index in range(count):
            # Block by block under the lock, so other clients are served in between.
            with self.miner.paused():
                if index and interval is not None:
                    self._mine_one(self._latest_timestamp() + max(interval, 1))
                else:
                    self._mine_one()
        return None

    def _increase_time(self, params: list[Any]) -> int:
        """Returns the seconds added in all, as anvil does."""
        (raw,) = expect_params(params, 1)
        seconds = parse_quantity(raw, "seconds")
        if self._latest_timestamp() + seconds >= _MAX_TIMESTAMP:
            raise RpcError(SERVER_ERROR, f"increasing time by {seconds} s would take block timestamps past 2**63")
        # The head may be a few seconds ahead of the clock (blocks need increasing
        # timestamps): jump from the later of the two, so that the next block is
        # `seconds` after the chain's own idea of now.
        lead = max(0, self._latest_timestamp() - self.clock.now())
        self.clock.advance(lead + seconds)
        self.clock.increased += seconds
        self.backend.refresh()
        return self.clock.increased

    def _set_next_timestamp(self, params: list[Any]) -> None:
        (raw,) = expect_params(params, 1)
        timestamp = self._checked(parse_quantity(raw, "timestamp"))
        self.miner.set_next_timestamp(timestamp)  # the clock continues from it
        return None

    def _set_automine(self, params: list[Any]) -> None:
        (raw,) = expect_params(params, 1)
        self.miner.set_automine(parse_bool(raw, "automine"))
        return None

    def _set_interval(self, params: list[Any]) -> None:
        """anvil's evm_setIntervalMining: seconds between blocks, 0 to stop."""
        (raw,) = expect_params(params, 1)
        seconds = parse_quantity(raw, "interval")
        if seconds > MAX_BLOCK_TIME:
            raise RpcError(SERVER_ERROR, f"interval: at most {MAX_BLOCK_TIME} s between blocks, got {seconds}")
        self.miner.set_block_time(float(seconds) if seconds else None)
        return None
