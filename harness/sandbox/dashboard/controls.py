"""The dashboard's controls, each a JSON API: advance chain time, pause, resume or crash
a simulated node, inject a fault on the Relay's next requests.

Each control checks its whole input before doing anything and refuses bad input
with a `ControlError` naming the field (HTTP 400); an input that is well formed
but cannot apply now (resuming a node that is not paused, a revert) is a
`ControlError` with status 409. Node transactions are signed on the server with
the node's own key, which never leaves it.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from hydrogen_harness.protocol.constants import NodeStatus
from hydrogen_harness.protocol.reverts import RevertError
from hydrogen_harness.sandbox.api import DevMethodError

if TYPE_CHECKING:
    from hydrogen_harness.fakes.node import SimulatedNode
    from hydrogen_harness.sandbox.core import Sandbox

__all__ = ["MAX_ADVANCE", "MAX_FAULT_COUNT", "MAX_FAULT_DELAY", "NODE_ACTIONS", "ControlError", "advance", "clear_faults", "inject_fault", "node_action"]

MAX_ADVANCE = 366 * 24 * 3600  # seconds: a year and a day is more than any deadline needs
MAX_FAULT_COUNT = 1_000
MAX_FAULT_DELAY = 30.0  # seconds
MAX_PATTERN = 200  # characters of a path pattern
NODE_ACTIONS = ("pause", "resume", "crash")
_METHODS = ("GET", "POST")  # all the Relay's API uses


class ControlError(Exception):
    """A control refused: `field` names the input at fault; `status` is 400 or 409."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        kind = "validation_error" if self.status == 400 else "conflict"
        return {"message": kind, "data": {"field_name": self.field, "message": self.message}}


def _object(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ControlError("body", f"expected a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) if allowed else "no fields"
        raise ControlError(unknown[0], f"unknown field {unknown[0]!r}: expected {expected}")
    return body


def _whole(body: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        raise ControlError(name, f"{name} is required: a whole number from {low} to {high}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError(name, f"{name} must be a whole number from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        raise ControlError(name, f"{name} must be from {low} to {high}, got {value}")
    return value


# ---------------------------------------------------------------- time


def advance(sandbox: Sandbox, body: Any) -> dict[str, Any]:
    """`{"seconds": N}`: move chain time N seconds on and mine a block (as `Sandbox.advance`)."""
    seconds = _whole(_object(body, ("seconds",)), "seconds", 1, MAX_ADVANCE)
    try:
        timestamp = sandbox.advance(seconds)
    except DevMethodError as exc:
        raise ControlError("seconds", f"the chain refused to move its clock: {exc}", status=409) from None
    assert sandbox.chain is not None
    return {"time": timestamp, "block": sandbox.chain.block_number}


# ---------------------------------------------------------------- nodes


def find_node(sandbox: Sandbox, ref: str) -> SimulatedNode:
    """A simulated node by name (node3) or address (any case)."""
    nodes = sandbox.all_nodes
    for node in nodes:
        if ref == node.name or ref.lower() == node.address.lower():
            return node
    names = ", ".join(n.name for n in nodes[:12]) + (", ..." if len(nodes) > 12 else "")
    known = f"expected one of {names} or its address" if nodes else "this sandbox runs no simulated nodes"
    raise ControlError("node", f"no simulated node {ref[:64]!r}: {known}")


def node_action(sandbox: Sandbox, ref: str, action: str, body: Any) -> dict[str, Any]:
    """pause (on chain: AVAILABLE -> PAUSED, BUSY -> PENDING_PAUSE), resume (PAUSED ->
    AVAILABLE), or crash (the node process dies: it never acts again, as `crash:` behaviours)."""
    if action not in NODE_ACTIONS:
        raise ControlError("action", f"unknown node action {action[:32]!r}: expected {', '.join(NODE_ACTIONS)}")
    _object(body, ())
    node = find_node(sandbox, ref)
    if node.crashed:
        raise ControlError("node", f"{node.name} has crashed: a dead node sends nothing until the sandbox restarts", 409)
    if action == "crash":
        with sandbox._quiet_nodes():  # between two ticks: the node is not in the middle of a step
            node.crashed = True
        sandbox._timeline.node_action(node.name, "crashed (dashboard)", None)
        return _node_answer(node)
    allowed = (NodeStatus.AVAILABLE, NodeStatus.BUSY) if action == "pause" else (NodeStatus.PAUSED,)
    registry = sandbox._deployed().node
    # Between two ticks, so the node's own transactions do not race this one's nonce.
    with sandbox._quiet_nodes():
        status = node.status()
        if status not in allowed:
            needs = " or ".join(s.name for s in allowed)
            raise ControlError("node", f"{node.name} is {status.name}: {action} needs {needs}", 409)
        try:
            (registry.pause if action == "pause" else registry.resume)(node.account)
        except RevertError as exc:
            raise ControlError("node", f"{action} of {node.name} reverted: {exc.reason}", 409) from None
    sandbox._timeline.node_action(node.name, f"{action} (dashboard)", None)
    sandbox._wake_nodes()
    return _node_answer(node)


def _node_answer(node: SimulatedNode) -> dict[str, Any]:
    return {"node": node.name, "address": node.address, "status": node.status().name, "crashed": node.crashed}


# ---------------------------------------------------------------- Relay faults


def inject_fault(sandbox: Sandbox, body: Any) -> dict[str, Any]:
    """`{"count": N, "status": 503 | "delay": 2.5 | "drop": true, "method": "GET"?, "path": regex?}`:
    the Relay's next N matching requests (any, by default) get that answer."""
    fields = _object(body, ("count", "status", "delay", "drop", "method", "path"))
    count = _whole(fields, "count", 1, MAX_FAULT_COUNT)
    # `is`, not `in`: a delay of 0 equals False, and must be refused as a delay, not ignored.
    effects = [name for name in ("status", "delay", "drop") if fields.get(name) is not None and fields.get(name) is not False]
    if len(effects) != 1:
        raise ControlError("status", f"give exactly one of status, delay or drop: true, got {', '.join(effects) or 'none'}")
    status = _whole(fields, "status", 400, 599) if "status" in effects else None
    delay: float | None = None
    if "delay" in effects:
        value = fields["delay"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ControlError("delay", f"delay must be a number of seconds, got {value!r}")
        if not 0 < value <= MAX_FAULT_DELAY:
            raise ControlError("delay", f"delay must be more than 0 and at most {MAX_FAULT_DELAY:g} seconds, got {value}")
        delay = float(value)
    if "drop" in effects and fields["drop"] is not True:
        raise ControlError("drop", f"drop must be true or absent, got {fields['drop']!r}")
    method = fields.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() not in _METHODS):
        raise ControlError("method", f"method must be GET or POST (or absent for any), got {method!r}")
    pattern = fields.get("path", "")
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
        raise ControlError("path", f"path must be a regular expression of at most {MAX_PATTERN} characters, got {pattern!r:.80}")
    try:
        path = re.compile(pattern)
    except re.error as exc:
        raise ControlError("path", f"path is not a valid regular expression: {exc}") from None
    try:
        handle = sandbox.faults.fail_next(
            count, method.upper() if method else None, path, status=status, delay=delay, drop="drop" in effects, server="relay"
        )
    except ValueError as exc:
        raise ControlError("body", str(exc)) from None
    what = f"{method.upper() if method else 'any'} requests" + (f" matching {pattern!r}" if pattern else "")
    sandbox._timeline.record("dashboard", f"Relay fault armed: next {count} {what} -> {handle.effect}")
    return {"armed": {"count": count, "method": handle.method, "path": pattern, "effect": handle.effect}}


def clear_faults(sandbox: Sandbox, body: Any) -> dict[str, Any]:
    """Disarm every injected fault, on either server."""
    _object(body, ())
    disarmed = len(sandbox.faults.armed)
    sandbox.faults.clear()
    sandbox._timeline.record("dashboard", f"faults cleared ({disarmed} armed)")
    return {"disarmed": disarmed}
