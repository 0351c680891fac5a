"""Where the fake Relay reads the chain: a block head and the Task contract's events.

`ChainSource` is all the service needs, so tests can feed it a scripted list of
events and the sandbox can point it at any chain `hydrogen_harness.chain.contracts` can reach.
"""

from __future__ import annotations

from typing import Protocol

from hydrogen_harness.chain.contracts import TaskContract
from hydrogen_harness.protocol.events import TaskEvent

__all__ = ["ChainSource", "ContractChainSource"]


class ChainSource(Protocol):
    def head(self) -> int:
        """The number of the latest block."""
        ...

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        """The Task contract's events in blocks [from_block, to_block], in chain order."""
        ...

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number` of the chain as it is now; None if the chain has
        no such block, or keeps no block hashes at all."""
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
