"""eth_getLogs and the filter methods, read straight from py-evm's receipts.

Ranges follow anvil and execution-apis: a bound beyond the head is an error
(-32602), an explicit `fromBlock` after an explicit `toBlock` is an error,
`blockHash` selects one block. A log filter's
changes are the matching logs of every block mined since the last poll (or
since it was installed), within its `fromBlock`/`toBlock` when those are
numbers, in order, each once; `eth_getFilterLogs` reads its whole range. After
an evm_revert took the head back, polling resumes from the new head. As in
geth, a filter not polled for 5 minutes is uninstalled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_canonical_address

from hydrogen_harness.jsonrpc.feed import ChainFeed
from hydrogen_harness.jsonrpc.errors import INVALID_PARAMS, SERVER_ERROR, RpcError, expect_params
from hydrogen_harness.jsonrpc.evm import EvmReader, LogQuery
from hydrogen_harness.jsonrpc.wire import (
    FilterRequest,
    data,
    log_to_wire,
    parse_filter,
    parse_quantity,
    quantity,
)

__all__ = ["LogMethods"]


FILTER_TIMEOUT = 300.0  # seconds: geth's deadline for a filter nobody polls


@dataclass
class _LogFilter:
    request: FilterRequest
    cursor: int  # the next block whose logs are "changes"
    polled: float


@dataclass
class _BlockFilter:
    cursor: int
    polled: float


@dataclass
class _PendingFilter:
    polled: float
    hashes: list[str] = field(default_factory=list)  # pending since the last poll


_Filter = _LogFilter | _BlockFilter | _PendingFilter


class LogMethods:
    """eth_getLogs, eth_newFilter, eth_newBlockFilter, eth_getFilterChanges, ..."""

    def __init__(self, evm: EvmReader, feed: ChainFeed) -> None:
        self.evm = evm
        self._filters: dict[int, _Filter] = {}
        self._next_filter = 1
        self._pending_lock = threading.Lock()  # the feed may call in while a poll reads
        self.now: Callable[[], float] = time.monotonic  # the expiry's clock
        feed.on_pending(self._note_pending)

    def _note_pending(self, tx_hash: str) -> None:
        with self._pending_lock:
            for item in self._filters.values():
                if isinstance(item, _PendingFilter):
                    item.hashes.append(tx_hash)

    def handlers(self) -> dict[str, Callable[[list[Any]], Any]]:
        return {
            "eth_getLogs": self._logs,
            "eth_newFilter": self._new_filter,
            "eth_newBlockFilter": self._new_block_filter,
            "eth_newPendingTransactionFilter": self._new_pending_filter,
            "eth_getFilterChanges": self._filter_changes,
            "eth_getFilterLogs": self._filter_logs,
            "eth_uninstallFilter": self._uninstall_filter,
        }

    def _head(self) -> int:
        return int(self.evm.head().block_number)

    def _query(self, request: FilterRequest, from_floor: int | None = None) -> LogQuery | None:
        """Resolve a filter to a block range clamped to the head (None: nothing to read).

        With `from_floor` (a filter's changes), blocks before it are skipped and a
        `fromBlock` that is not a number does not reach back before it.
        """
        head = self._head()
        if request.block_hash is not None:
            number = self.evm.canonical_number(bytes.fromhex(request.block_hash[2:]))
            if number is None:
                raise RpcError(SERVER_ERROR, f"unknown block {request.block_hash}")
            start = end = number
        else:
            if isinstance(request.from_block, int) and isinstance(request.to_block, int) and request.from_block > request.to_block:
                raise RpcError(SERVER_ERROR, "invalid block range params")
            if from_floor is None:
                start = _bound(request.from_block, head)
            else:
                start = max(from_floor, request.from_block if isinstance(request.from_block, int) else 0)
            end = _bound(request.to_block, head)
        end = min(end, head)
        if start > end:
            return None
        addresses = frozenset(to_canonical_address(a) for a in request.addresses) if request.addresses else None
        topics = tuple(
            None if t is None else tuple(bytes.fromhex(x[2:]) for x in (t if isinstance(t, list) else [t]))
            for t in (request.topics or [])
        )
        return LogQuery(from_block=start, to_block=end, addresses=addresses, topics=topics)

    def _read(self, query: LogQuery | None) -> list[dict[str, Any]]:
        return [log_to_wire(log) for log in self.evm.logs(query)] if query is not None else []

    def _logs(self, params: list[Any]) -> list[dict[str, Any]]:
        (raw,) = expect_params(params, 1)
        request = parse_filter(raw)
        self._within_head(request)
        return self._read(self._query(request))

    def _within_head(self, request: FilterRequest) -> None:
        """A range with a bound past the head is refused (-32602), as anvil refuses it and
        execution-apis' tests expect; a client pages up to the head it has read."""
        head = self._head()
        for bound in (request.from_block, request.to_block):
            if isinstance(bound, int) and bound > head:
                raise RpcError(INVALID_PARAMS, f"block range extends beyond current head block: {bound} > {head}")

    def _add(self, item: _Filter) -> str:
        self._expire()
        filter_id = self._next_filter
        self._next_filter += 1
        with self._pending_lock:
            self._filters[filter_id] = item
        return quantity(filter_id)

    def _expire(self) -> None:
        stale = self.now() - FILTER_TIMEOUT
        with self._pending_lock:
            for filter_id in [i for i, item in self._filters.items() if item.polled < stale]:
                del self._filters[filter_id]

    def _new_filter(self, params: list[Any]) -> str:
        (raw,) = expect_params(params, 1)
        request = parse_filter(raw)
        self._query(request)  # refuse a bad range now rather than at the first poll
        return self._add(_LogFilter(request, cursor=self._head() + 1, polled=self.now()))

    def _new_block_filter(self, params: list[Any]) -> str:
        expect_params(params, 0)
        return self._add(_BlockFilter(cursor=self._head() + 1, polled=self.now()))

    def _new_pending_filter(self, params: list[Any]) -> str:
        (full,) = expect_params(params, 0, 1)
        if full:
            raise RpcError(SERVER_ERROR, "full pending transactions are not supported by a filter; use eth_subscribe")
        return self._add(_PendingFilter(polled=self.now()))

    def _filter(self, raw: Any) -> _Filter:
        self._expire()
        item = self._filters.get(parse_quantity(raw, "filter id"))
        if item is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        item.polled = self.now()
        return item

    def _filter_changes(self, params: list[Any]) -> list[Any]:
        (raw,) = expect_params(params, 1)
        item = self._filter(raw)
        if isinstance(item, _PendingFilter):
            with self._pending_lock:
                hashes, item.hashes = item.hashes, []
            return hashes
        head = self._head()
        start = min(item.cursor, head + 1)  # after an evm_revert the head may be behind
        item.cursor = head + 1
        if isinstance(item, _BlockFilter):
            headers = (self.evm.header(n) for n in range(start, head + 1))
            return [data(h.hash) for h in headers if h is not None]
        return self._read(self._query(item.request, from_floor=start))

    def _filter_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        (raw,) = expect_params(params, 1)
        item = self._filter(raw)
        if not isinstance(item, _LogFilter):
            raise RpcError(SERVER_ERROR, "filter not found")
        self._within_head(item.request)
        return self._read(self._query(item.request))

    def _uninstall_filter(self, params: list[Any]) -> bool:
        (raw,) = expect_params(params, 1)
        with self._pending_lock:
            return self._filters.pop(parse_quantity(raw, "filter id"), None) is not None


def _bound(value: str | int | None, head: int) -> int:
    if value is None or value in ("latest", "pending", "safe", "finalized"):
        return head
    if value == "earliest":
        return 0
    assert isinstance(value, int)
    return value
