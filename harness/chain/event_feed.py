"""The Task contract's events, read block by block from a cursor: one mechanism for
every reader (the application, the nodes, the Relay, the ledger, the network, the
sandbox).

`ChainSource` is all a reader needs of the chain, so tests can feed one a scripted
list of events, and `ContractChainSource` reads a deployed Task contract on any
backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from hydrogen_harness.chain.contracts import TaskContract
from hydrogen_harness.protocol.events import TaskEvent

__all__ = ["ChainSource", "ContractChainSource", "EventFeed"]


class ChainSource(Protocol):
    def head(self) -> int:
        """The number of the latest block."""
        ...

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        """The Task contract's events in blocks [from_block, to_block], in chain order."""
        ...

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number` of the chain as it is now; None if the chain has
        no such block."""
        ...


class ContractChainSource:
    """A `ChainSource` over a deployed Task contract."""

    def __init__(self, task: TaskContract) -> None:
        self.task = task

    def head(self) -> int:
        return self.task.chain.block_number

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        return self.task.events_between(from_block, to_block)

    def block_hash(self, number: int) -> bytes | None:
        return self.task.chain.block_hash(number)


class EventFeed:
    """Events from block `cursor` on: each call reads the blocks mined since the last,
    once, in chain order. `page_blocks` caps the blocks of one log query (JSON-RPC
    nodes commonly cap eth_getLogs ranges)."""

    def __init__(self, source: ChainSource, cursor: int, page_blocks: int | None = None) -> None:
        if page_blocks is not None and page_blocks < 1:
            raise ValueError(f"page_blocks must be at least 1, got {page_blocks}")
        self.source = source
        self.cursor = cursor  # the next block to read
        self.page_blocks = page_blocks

    def poll(self, up_to: int | None = None) -> list[TaskEvent]:
        """The events of blocks [cursor, up_to] (default: the head); the cursor moves past them."""
        events: list[TaskEvent] = []
        for _, _, page in self.pages(up_to):
            events.extend(page)
        return events

    def pages(self, up_to: int | None = None) -> Iterator[tuple[int, int, list[TaskEvent]]]:
        """(first block, last block, events) page by page up to `up_to` (default: the head)."""
        head = self.source.head() if up_to is None else up_to
        while (page := self.next_page(head)) is not None:
            yield page

    def next_page(self, up_to: int) -> tuple[int, int, list[TaskEvent]] | None:
        """The next page up to block `up_to` as (first block, last block, events), the
        cursor moved past it; None when the cursor is past `up_to`."""
        if self.cursor > up_to:
            return None
        start = self.cursor
        end = up_to if self.page_blocks is None else min(up_to, start + self.page_blocks - 1)
        events = self.source.events(start, end)
        self.cursor = end + 1
        return start, end, events

    def skip(self, up_to: int | None = None) -> None:
        """Move the cursor past block `up_to` (default: the head) without reading."""
        head = self.source.head() if up_to is None else up_to
        self.cursor = max(self.cursor, head + 1)
