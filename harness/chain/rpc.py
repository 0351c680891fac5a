"""A chain reached over JSON-RPC (anvil, a devnet) with anvil's dev methods (`evm_*`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.types import FilterParams, RPCEndpoint, TxParams, TxReceipt

from hydrogen_harness.chain.backend import Backend
from hydrogen_harness.protocol.reverts import RevertError, decode_revert

__all__ = ["RpcBackend"]


class RpcBackend(Backend):
    """See the module docstring. Other clients may send from the same accounts, so
    nonces are asked of the node before every transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.chain_id = int(self.reader.eth.chain_id)

    def web3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))

    def _dev(self, method: str, params: list[Any]) -> Any:
        return self.reader.provider.make_request(RPCEndpoint(method), params)

    def head(self) -> tuple[int, int]:
        block = self.reader.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

    def block_timestamp(self, number: int) -> int:
        return int(self.reader.eth.get_block(number)["timestamp"])

    def block_hash(self, number: int) -> bytes | None:
        if number < 0:
            return None
        try:
            return bytes(self.reader.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def mine_at(self, timestamp: int) -> int:
        self.set_next_timestamp(timestamp)
        self._dev("evm_mine", [])
        return timestamp

    def set_next_timestamp(self, timestamp: int) -> None:
        self._dev("evm_setNextBlockTimestamp", [timestamp])

    def balance(self, address: str) -> int:
        return int(self.reader.eth.get_balance(to_checksum_address(address)))

    def code(self, address: str) -> bytes:
        return bytes(self.reader.eth.get_code(to_checksum_address(address)))

    def pending_nonce(self, address: str) -> int:
        return int(self.reader.eth.get_transaction_count(to_checksum_address(address), "pending"))

    def send_raw(self, raw: bytes) -> str:
        try:
            return "0x" + bytes(self.reader.eth.send_raw_transaction(raw)).hex()
        except Exception as exc:
            reason = decode_revert(exc)
            if reason is not None:
                raise RevertError(reason) from exc
            raise

    def wait_receipt(self, tx_hash: str) -> TxReceipt:
        return self.reader.eth.wait_for_transaction_receipt(cast(Any, tx_hash), timeout=60, poll_latency=0.05)

    def call(self, tx: dict[str, Any], block: int | str) -> bytes:
        params = {key: value for key, value in tx.items() if value is not None}
        try:
            return bytes(self.reader.eth.call(cast(TxParams, params), block_identifier=cast(Any, block)))
        except Exception as exc:
            reason = decode_revert(exc)
            if reason is None and not _is_revert(exc):
                raise
            raise RevertError(reason) from exc

    def logs(self, addresses: set[str], from_block: int, to_block: int, topics: Sequence[Any] | None) -> list[Any]:
        params: dict[str, Any] = {"fromBlock": from_block, "toBlock": to_block, "address": [to_checksum_address(a) for a in sorted(addresses)]}
        if topics:
            params["topics"] = list(topics)
        return list(self.reader.eth.get_logs(cast(FilterParams, params)))

    def snapshot(self) -> Any:
        return self._dev("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: Any) -> None:
        answer = self._dev("evm_revert", [snapshot_id])
        if not answer.get("result"):
            raise RuntimeError(f"evm_revert({snapshot_id!r}) failed: {answer}")


def _is_revert(exc: BaseException) -> bool:
    """A revert with no reason: web3 raises ContractLogicError with no data."""
    from web3.exceptions import ContractLogicError

    return isinstance(exc, ContractLogicError)
