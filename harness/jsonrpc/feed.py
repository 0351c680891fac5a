"""Who hears of new blocks and new pending transactions on the served chain.

The miner publishes each mined block's number and each transaction that becomes
executable (pending); WebSocket subscriptions, filters and the sandbox's node
loop subscribe. Callbacks run on the publisher's thread (a block's after the
chain lock is released, a pending transaction's while the sender still holds
it), so they must be quick and must not block: hand work to your own thread or
event loop, e.g. with `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ChainFeed"]

_log = logging.getLogger("hydrogen_harness.feed")

BlockListener = Callable[[int], None]
PendingListener = Callable[[str], None]


class ChainFeed:
    """Publish/subscribe of mined block numbers and pending transaction hashes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: list[BlockListener] = []
        self._pending: list[PendingListener] = []

    def on_block(self, listener: BlockListener) -> Callable[[], None]:
        """Call `listener(number)` for every block mined from now; returns the unsubscribe."""
        with self._lock:
            self._blocks.append(listener)
        return lambda: self._remove(self._blocks, listener)

    def on_pending(self, listener: PendingListener) -> Callable[[], None]:
        """Call `listener(tx_hash)` for every transaction that becomes pending; returns the unsubscribe."""
        with self._lock:
            self._pending.append(listener)
        return lambda: self._remove(self._pending, listener)

    def listeners(self) -> tuple[int, int]:
        """How many block and pending-transaction listeners are subscribed."""
        with self._lock:
            return len(self._blocks), len(self._pending)

    def _remove(self, listeners: list[Any], listener: object) -> None:
        with self._lock:
            if listener in listeners:
                listeners.remove(listener)

    def publish_block(self, number: int) -> None:
        with self._lock:
            listeners = list(self._blocks)
        for listener in listeners:
            self._call(listener, number)

    def publish_pending(self, tx_hash: str) -> None:
        with self._lock:
            listeners = list(self._pending)
        for listener in listeners:
            self._call(listener, tx_hash)

    @staticmethod
    def _call(listener: Callable[[Any], None], value: object) -> None:
        try:
            listener(value)
        except Exception:  # one broken subscriber must not stop the miner
            _log.exception("chain feed listener failed")
