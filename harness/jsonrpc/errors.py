"""JSON-RPC errors as geth reports them, and the parameter count check.

Clients match on geth's codes and words ("nonce too low", "execution reverted:
<reason>" with code 3 and the revert data), so the sandbox uses them too.
"""

from __future__ import annotations

import re
from typing import Any

from hydrogen_harness.protocol.reverts import revert_reason
from hydrogen_harness.jsonrpc.wire import data

__all__ = [
    "EXECUTION_REVERTED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SERVER_ERROR",
    "RpcError",
    "expect_params",
    "revert_error",
    "transaction_refused",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
EXECUTION_REVERTED = 3


class RpcError(Exception):
    """A JSON-RPC error answer: `code`, `message` and optional `data` (0x hex)."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def expect_params(params: list[Any], required: int, optional: int = 0) -> list[Any]:
    """`params` padded with None to `required + optional` items, or INVALID_PARAMS."""
    most = required + optional
    if not required <= len(params) <= most:
        wanted = f"{required}" if not optional else f"{required} to {most}"
        raise RpcError(INVALID_PARAMS, f"expected {wanted} params, got {len(params)}")
    return params + [None] * (most - len(params))


def revert_error(raw: bytes) -> RpcError:
    """A revert with its data: code 3 and the reason when there is data, as geth answers."""
    reason = revert_reason(raw)
    if reason is not None:
        return RpcError(EXECUTION_REVERTED, f"execution reverted: {reason}", data(raw))
    if raw:
        return RpcError(EXECUTION_REVERTED, "execution reverted", data(raw))
    return RpcError(SERVER_ERROR, "execution reverted")


_NONCE = re.compile(r"Invalid transaction nonce: Expected (\d+), but got (\d+)")


def transaction_refused(exc: Exception) -> RpcError:
    """py-evm's refusal of a transaction, in the words geth uses."""
    text = str(exc)
    nonce = _NONCE.search(text)
    if nonce:
        expected, got = int(nonce.group(1)), int(nonce.group(2))
        word = "low" if got < expected else "high"
        return RpcError(SERVER_ERROR, f"nonce too {word}: next nonce {expected}, tx nonce {got}")
    if "cannot afford" in text or "not have enough balance" in text:
        return RpcError(SERVER_ERROR, f"insufficient funds for gas * price + value: {text}")
    if "base fee" in text:
        return RpcError(SERVER_ERROR, f"max fee per gas less than block base fee: {text}")
    if "exceeds gas limit" in text:
        return RpcError(SERVER_ERROR, f"exceeds block gas limit: {text}")
    return RpcError(SERVER_ERROR, f"invalid transaction: {text}")
