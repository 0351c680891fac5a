"""What makes the in-memory chains (eth-tester and revm) the same from run to run,
and the same as each other: seeded block randomness and one block gas limit.

Both backends stamp each block's `mix_hash` (prevrandao) with `mix_hash(seed,
number)` instead of fresh randomness, so block hashes, and so the Task contract's
node selection, repeat for a seed and agree between the backends.
"""

from __future__ import annotations

from eth_utils import keccak

__all__ = ["BLOCK_GAS_LIMIT", "mix_hash"]

BLOCK_GAS_LIMIT = 60_000_000  # H-net clients send ~43M gas limits (PROTOCOL.md 7)


def mix_hash(seed: int, number: int) -> bytes:
    """Block `number`'s mix hash (prevrandao) on a chain seeded with `seed`."""
    return keccak(f"hydrogen-harness-block:{seed}:{number}".encode())
