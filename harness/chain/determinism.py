"""What makes the in-memory chains (eth-tester and revm) the same from run to run,
and the same as each other: seeded block randomness, one block gas limit, one base
fee rule, and what the BLOCKHASH opcode answers.

Both backends stamp each block's `mix_hash` (prevrandao) with `mix_hash(seed,
number)` instead of fresh randomness, and give contracts `opcode_block_hash(number)`
for BLOCKHASH, so the Task contract's node selection repeats for a seed and agrees
between the backends.
"""

from __future__ import annotations

from functools import lru_cache

from eth_hash.auto import keccak

__all__ = ["BLOCK_GAS_LIMIT", "INITIAL_BASE_FEE", "mix_hash", "next_base_fee", "opcode_block_hash"]

BLOCK_GAS_LIMIT = 60_000_000  # H-net clients send ~43M gas limits (PROTOCOL.md 7)
# H-net clients send legacy transactions priced at 1 wei: a base fee of 1 wei stays
# 1 wei while blocks are less than half full.
INITIAL_BASE_FEE = 1


@lru_cache(maxsize=1024)  # asked several times for each block
def mix_hash(seed: int, number: int) -> bytes:
    """Block `number`'s mix hash (prevrandao) on a chain seeded with `seed`."""
    return keccak(f"hydrogen-harness-block:{seed}:{number}".encode())


def opcode_block_hash(number: int) -> bytes:
    """What BLOCKHASH gives a contract for block `number` on the in-memory chains.

    revm (through pyrevm 0.3.7, which has no way to set block hashes) answers
    keccak256 of the number in decimal; the tester gives contracts the same, so that
    selection agrees between the backends. A block's own hash (`Chain.block_hash`,
    receipts, logs) is unaffected: it is the chain's real one on each backend.
    """
    return keccak(str(number).encode())


def next_base_fee(parent_base_fee: int, parent_gas_used: int, gas_limit: int) -> int:
    """EIP-1559: the base fee of the block after one with `parent_gas_used` gas used."""
    target = gas_limit // 2
    if parent_gas_used == target:
        return parent_base_fee
    if parent_gas_used > target:
        return parent_base_fee + max(parent_base_fee * (parent_gas_used - target) // target // 8, 1)
    return max(parent_base_fee - parent_base_fee * (target - parent_gas_used) // target // 8, 0)
