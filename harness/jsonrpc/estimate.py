"""eth_estimateGas as geth computes it: a binary search on the gas limit.

geth (internal/ethapi, eth/gasestimator) runs the call once at the cap, then tries
an optimistic limit of (gas spent before refunds + 2300) * 64/63, which covers
the 63/64 rule for nested calls in the common case, and otherwise bisects
between the last failing and the first passing limit until they are within
1.5% of each other. The answer is always a limit that was seen to pass, so a
transaction sent with it in the same block context cannot run out of gas.

The cap is the call's own `gas`, else the block gas limit, lowered to what the
sender can pay when the call is priced.
"""

from __future__ import annotations

from collections.abc import Callable

from hydrogen_harness.jsonrpc.errors import SERVER_ERROR, RpcError, revert_error
from hydrogen_harness.jsonrpc.evm import CallOutcome

__all__ = ["estimate_gas"]

TX_GAS = 21_000
CALL_STIPEND = 2_300
ERROR_RATIO = 0.015

Run = Callable[[int], CallOutcome]


def _failed(outcome: CallOutcome) -> bool:
    return outcome.reverted or outcome.error is not None


def estimate_gas(run: Run, cap: int) -> int:
    """The smallest passing gas limit (within 1.5%) for the call `run(gas)` executes.

    Raises the revert (code 3) or "gas required exceeds allowance" as geth does.
    """
    outcome = run(cap)
    if outcome.reverted:
        raise revert_error(outcome.revert_data)
    if outcome.error is not None:
        if "gas" in outcome.error.lower():
            raise RpcError(SERVER_ERROR, f"gas required exceeds allowance ({cap})")
        raise RpcError(SERVER_ERROR, outcome.error)
    if outcome.gas_consumed <= TX_GAS:
        return TX_GAS  # nothing but the intrinsic cost ran (a plain transfer): exact, as geth says
    low = outcome.gas_consumed - 1
    high = cap
    optimistic = (outcome.gas_consumed + CALL_STIPEND) * 64 // 63
    if optimistic < high:
        if _failed(run(optimistic)):
            low = optimistic
        else:
            high = optimistic
    while low + 1 < high:
        if (high - low) / high < ERROR_RATIO:
            break
        middle = (high + low) // 2
        middle = min(middle, low * 2)  # most calls need little: look low first, as geth does
        if _failed(run(middle)):
            low = middle
        else:
            high = middle
    return high
