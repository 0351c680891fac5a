"""EIP-55 checksummed addresses, remembered.

eth-utils computes a checksum with a keccak and a pass over 40 characters (about a
tenth of a millisecond); a simulation checksums the same few dozen addresses
thousands of times (event fields, transaction recipients, contract calls).
"""

from __future__ import annotations

from functools import lru_cache

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

__all__ = ["checksum"]


@lru_cache(maxsize=4096)
def checksum(address: str | bytes) -> ChecksumAddress:
    """`address` (hex text or 20 bytes) in EIP-55 form; ValueError if it is not an address."""
    return to_checksum_address(address)
