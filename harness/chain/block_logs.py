"""A mined block's logs, read once from py-evm's receipts and kept by block hash.

eth-tester's own log reading normalises every receipt in range on each call; the
in-memory backend and the sandbox's JSON-RPC endpoint both read logs straight from
py-evm instead. A mined block never changes under its hash, so its logs are shaped
once (web3-style for the backend, eth-tester-style for JSON-RPC) and kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from hexbytes import HexBytes

from hydrogen_harness.protocol.addresses import checksum

__all__ = ["BlockLogIndex", "LogRecord", "web3_log"]


class LogRecord(NamedTuple):
    address: bytes
    topics: list[bytes]
    data: bytes
    block_number: int
    block_hash: bytes
    transaction_hash: bytes
    transaction_index: int
    log_index: int  # block-wide, as eth_getLogs numbers them
    block_timestamp: int


def web3_log(log: LogRecord) -> dict[str, Any]:
    """A log as web3 hands it over: camelCase keys, checksummed address, hashes and data
    as HexBytes."""
    return {
        "address": checksum(log.address),
        "topics": [HexBytes(topic) for topic in log.topics],
        "data": HexBytes(log.data),
        "blockNumber": log.block_number,
        "blockHash": HexBytes(log.block_hash),
        "transactionHash": HexBytes(log.transaction_hash),
        "transactionIndex": log.transaction_index,
        "logIndex": log.log_index,
    }


class BlockLogIndex:
    """The logs of the `capacity` most recently read blocks, each shaped by `shape`."""

    def __init__(self, shape: Callable[[LogRecord], dict[str, Any]], capacity: int) -> None:
        self._shape = shape
        self._capacity = capacity
        self._blocks: OrderedDict[bytes, list[dict[str, Any]]] = OrderedDict()

    def get(self, chain: Any, number: int, block_hash: bytes) -> list[dict[str, Any]]:
        """The logs of canonical block `number` (whose hash is `block_hash`) of py-evm `chain`."""
        cached = self._blocks.get(block_hash)
        if cached is not None:
            self._blocks.move_to_end(block_hash)
            return cached
        block = chain.get_block_by_hash(block_hash)
        logs: list[dict[str, Any]] = []
        for tx_index, (tx, receipt) in enumerate(zip(block.transactions, block.get_receipts(chain.chaindb), strict=True)):
            for log in receipt.logs:
                record = LogRecord(
                    address=bytes(log.address),
                    topics=[topic.to_bytes(32, "big") for topic in log.topics],
                    data=bytes(log.data),
                    block_number=number,
                    block_hash=block_hash,
                    transaction_hash=tx.hash,
                    transaction_index=tx_index,
                    log_index=len(logs),
                    block_timestamp=int(block.header.timestamp),
                )
                logs.append(self._shape(record))
        self._blocks[block_hash] = logs
        if len(self._blocks) > self._capacity:
            self._blocks.popitem(last=False)
        return logs
