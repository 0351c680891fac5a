"""One error type for reverted transactions and calls, whatever the backend.

eth-tester raises `TransactionFailed`, a real node answers a JSON-RPC error that
web3 turns into `ContractLogicError`; both carry the `Error(string)` payload in
some form, which `decode_revert` digs out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from eth_abi import decode

__all__ = ["RevertError", "RevertReason", "decode_revert", "revert_reason"]

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


class RevertReason(StrEnum):
    """Revert strings of the Task, Node and CNX contracts that the harness branches on,
    verbatim (a member equals its string, so `RevertError.reason` stays a `str`)."""

    TASK_NOT_EXIST = "Task not exist"
    TASK_IS_ABORTED = "Task is aborted"
    DEADLINE_NOT_EXCEEDED = "Task has not exceeded the deadline yet"


class RevertError(Exception):
    """A transaction or call reverted; `reason` is the revert string (or None)."""

    def __init__(self, reason: str | None, *, label: str = "", receipt: Any = None) -> None:
        self.reason = reason
        self.label = label
        self.receipt = receipt
        where = f"{label} " if label else ""
        super().__init__(f"{where}reverted: {reason!r}" if reason is not None else f"{where}reverted without a reason")


def revert_reason(payload: bytes) -> str | None:
    """The reason string of Error(string) revert data; None for any other data."""
    if payload[:4] != ERROR_SELECTOR:
        return None
    try:
        (reason,) = decode(["string"], payload[4:])
    except Exception:  # malformed Error(string) data
        return None
    return str(reason)


def _from_data(data: Any) -> str | None:
    if isinstance(data, str):
        try:
            return revert_reason(bytes.fromhex(data.removeprefix("0x")))
        except ValueError:
            return None
    if isinstance(data, (bytes, bytearray)):
        return revert_reason(bytes(data))
    return None


def decode_revert(exc: BaseException) -> str | None:
    """The revert string carried by `exc`, or None if it is not a revert."""
    from eth_tester.exceptions import TransactionFailed
    from web3.exceptions import ContractLogicError

    if isinstance(exc, ContractLogicError):
        reason = _from_data(exc.data)
        if reason is not None:
            return reason
        message = str(exc.message if hasattr(exc, "message") else exc)
        return message.removeprefix("execution reverted: ").removeprefix("execution reverted") or None
    if isinstance(exc, TransactionFailed):
        arg = exc.args[0] if exc.args else None
        reason = _from_data(arg)
        if reason is not None:
            return reason
        if isinstance(arg, str):
            return arg.removeprefix("execution reverted: ") or None
        return None
    return None
