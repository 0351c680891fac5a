# pragma version 0.4.3
"""
@title SimilarityProbe
@notice Test-only: compiled next to the Task.vy under test, it calls Task's own
        internal `_similar` (and so its `_popcount64`) through a view-like call,
        which is ~50x cheaper than reaching it through two on-chain disclosures.
"""

import Task

initializes: Task


@deploy
def __init__():
    Task.__init__(Task.INode(empty(address)), Task.IERC20(empty(address)))


@external
def similar(a: Bytes[80], b: Bytes[80], threshold: uint256) -> bool:
    Task.distanceThreshold = threshold
    return Task._similar(a, b)
