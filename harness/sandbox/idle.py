"""Time that keeps moving on a chain the sandbox does not mine itself (anvil, a devnet).

The in-memory chain's miner mines an empty block every `block_time` seconds while
idle. anvil in automine mode mines only when a transaction comes, so its latest
block's time stands still while nothing happens, and a deadline compared with it
never passes. `IdleMiner` asks for an empty block (`evm_mine`) whenever no block
has come for `every` seconds; the test fixture turns it on, the command does not
(a node of the user's is theirs to mine).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from web3.types import RPCEndpoint

from hydrogen_harness.chain.chain import Chain

__all__ = ["IdleMiner"]


class IdleMiner:
    """A daemon thread: an empty block after `every` seconds without a new one, stamped
    later than the head by the seconds that passed since the head was first seen."""

    def __init__(self, chain: Chain, every: float, on_block: Callable[[], None] | None = None) -> None:
        if every <= 0:
            raise ValueError(f"every must be positive seconds, got {every}")
        self.chain = chain
        self.every = every
        self.mined = 0
        self._on_block = on_block
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="idle-miner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        seen, seen_at = -1, 0.0
        while not self._stop.wait(self.every):
            try:
                head = self.chain.block_number
                now = time.monotonic()
                if head == seen:
                    # An explicit time, later than the head's by the seconds that went by
                    # (at least one): anvil stamps a block with its own clock, which an
                    # evm_revert sets back to the snapshot's block, so a block mined soon
                    # after a revert would carry the head's time and time would not move.
                    latest = self.chain.w3.eth.get_block("latest")
                    timestamp = int(latest["timestamp"]) + max(1, round(now - seen_at))
                    self.chain.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [timestamp])
                    self.chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
                    self.mined += 1
                    head += 1
                    if self._on_block is not None:
                        self._on_block()
                if head != seen:
                    seen, seen_at = head, now
            except Exception:  # the node went away (stopping) or refused: try again later
                seen = -1
