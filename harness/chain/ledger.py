"""Every CNX movement on chain, by party and by task.

The ledger reads the token's `Transfer` logs and attributes each to a task: a
Task-contract call carries the task id as its first argument, and a `createTask`
transaction is matched to its `TaskCreated` log. This is how the simulation's
ledger table and the application's fees and refunds are computed, from the chain
itself rather than from what the actors believe happened.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from typing import Any

from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.chain.event_feed import ContractChainSource, EventFeed
from hydrogen_harness.protocol.events import TaskCreated

__all__ = ["Ledger", "Movement", "MovementKind"]

_TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
_CREATE_TASK = keccak(text="createTask(bytes32,bytes32)")[:4]


class MovementKind(str, Enum):
    ESCROW = "escrow"  # application -> Task
    FEE = "fee"  # Task -> node
    REFUND = "refund"  # Task -> application
    STAKE = "stake"  # node -> Node
    STAKE_RETURNED = "stake returned"  # Node -> node
    STAKE_SLASHED = "stake slashed"  # Node -> owner
    TRANSFER = "transfer"  # anything else (funding wallets)


@dataclass(frozen=True)
class Movement:
    block_number: int
    log_index: int
    tx_hash: str
    sender: str
    receiver: str
    amount: int
    kind: MovementKind
    task_id: int | None


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if isinstance(value, (bytes, bytearray)) else str(value)


class Ledger:
    """Reads CNX movements from a block cursor; call `sync()` to catch up."""

    def __init__(self, deployment: Deployment, from_block: int = 0, party: str | None = None) -> None:
        self.deployment = deployment
        # With a party, only its own transfers are read (two topic-filtered queries),
        # which keeps an application's bookkeeping cheap on a busy token.
        self.party = party
        self.movements: list[Movement] = []
        self._feed = EventFeed(ContractChainSource(deployment.task), from_block)
        self._task_of_tx: dict[str, int | None] = {}
        self._creators: dict[int, str] = {}
        self._owner_address: str | None = None

    def sync(self) -> list[Movement]:
        chain = self.deployment.chain
        head = chain.block_number
        start = self._feed.cursor
        if head < start:
            return []
        token = self.deployment.token.address
        if self.party is None:
            logs = chain.logs(token, start, head, topics=[_TRANSFER_TOPIC])
        else:
            topic = bytes(12) + bytes.fromhex(self.party.removeprefix("0x"))
            logs = chain.logs(token, start, head, topics=[_TRANSFER_TOPIC, topic])
            logs += chain.logs(token, start, head, topics=[_TRANSFER_TOPIC, None, topic])
            logs.sort(key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
        created: dict[str, int] = {}
        for event in self._feed.poll(up_to=head):
            if isinstance(event, TaskCreated):
                created[event.tx_hash] = event.task_id
                self._creators[event.task_id] = event.creator
        new = [self._movement(log, created) for log in logs]
        self.movements.extend(new)
        return new

    def _task_id(self, tx_hash: str, created: dict[str, int]) -> int | None:
        if tx_hash in created:
            return created[tx_hash]
        if tx_hash not in self._task_of_tx:
            to, data = self.deployment.chain.transaction_input(tx_hash)
            task_id: int | None = None
            if to and to.lower() == self.deployment.task.address.lower() and len(data) >= 36 and data[:4] != _CREATE_TASK:
                (task_id,) = decode(["uint256"], data[4:36])
            self._task_of_tx[tx_hash] = task_id
        return self._task_of_tx[tx_hash]

    def _movement(self, log: Any, created: dict[str, int]) -> Movement:
        sender = to_checksum_address(bytes(log["topics"][1])[-20:])
        receiver = to_checksum_address(bytes(log["topics"][2])[-20:])
        (amount,) = decode(["uint256"], bytes(log["data"]))
        tx_hash = _hex(log["transactionHash"])
        task, node = self.deployment.task.address, self.deployment.node.address
        if receiver == task:
            kind = MovementKind.ESCROW
        elif sender == task:
            task_id = self._task_id(tx_hash, created)
            creator = self._creator(task_id)
            kind = MovementKind.REFUND if creator == receiver else MovementKind.FEE
        elif receiver == node:
            kind = MovementKind.STAKE
        elif sender == node:
            kind = MovementKind.STAKE_SLASHED if receiver == self._owner() else MovementKind.STAKE_RETURNED
        else:
            kind = MovementKind.TRANSFER
        task_id = self._task_id(tx_hash, created) if kind is not MovementKind.TRANSFER and kind is not MovementKind.STAKE else None
        return Movement(
            block_number=int(log["blockNumber"]),
            log_index=int(log["logIndex"]),
            tx_hash=tx_hash,
            sender=sender,
            receiver=receiver,
            amount=int(amount),
            kind=kind,
            task_id=task_id,
        )

    def _owner(self) -> str:
        if self._owner_address is None:
            self._owner_address = self.deployment.node.owner()
        return self._owner_address

    def _creator(self, task_id: int | None) -> str | None:
        return None if task_id is None else self._creators.get(task_id)

    # ------------------------------------------------------------ summaries

    def totals_by_party(self) -> dict[str, dict[MovementKind, int]]:
        """Net CNX in (+) and out (-) per address and movement kind."""
        totals: dict[str, dict[MovementKind, int]] = defaultdict(lambda: defaultdict(int))
        for m in self.movements:
            totals[m.sender][m.kind] -= m.amount
            totals[m.receiver][m.kind] += m.amount
        return {party: dict(kinds) for party, kinds in totals.items()}

    def for_task(self, task_id: int) -> list[Movement]:
        return [m for m in self.movements if m.task_id == task_id]
