"""What a node commits, by behaviour: results are 8-byte words (one per image).

Each task has a true result; a node's result derives from it by its behaviour.
Bit flips are deterministic (seeded by task and round), so a failing sequence
replays bit for bit, and they sit on the similarity boundary on purpose:

- honest:    the true result;
- jitter:    threshold-1 bits flipped in every word (still similar to the truth,
             but two jitter results may differ from each other);
- wrong:     exactly `threshold` bits flipped in one word (just not similar);
- colluding: one wrong result shared by every colluder of the task (two colluders
             agree, and outvote an honest node);
- garbled:   the truth minus its last byte, shared by the task's garblers (the length
             is not a multiple of 8, so even two identical ones are not similar);
- short:     one image fewer (or one more when there is a single image).
"""

from __future__ import annotations

import random

from eth_utils import keccak

__all__ = ["KINDS", "node_result", "nonce_for", "words"]

KINDS = ("honest", "jitter", "wrong", "colluding", "garbled", "short")
MAX_WORDS = 10


def words(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(8, "big") for v in values)


def _flip(word: bytes, count: int, rng: random.Random) -> bytes:
    value = int.from_bytes(word, "big")
    for bit in rng.sample(range(64), min(count, 64)):
        value ^= 1 << bit
    return value.to_bytes(8, "big")


def node_result(kind: str, truth: bytes, task_id: int, round_: int, threshold: int) -> bytes:
    chunks = [truth[i : i + 8] for i in range(0, len(truth), 8)]
    if kind == "honest":
        return truth
    if kind == "jitter":
        rng = random.Random(f"jitter:{task_id}:{round_}")
        return b"".join(_flip(c, max(threshold - 1, 0), rng) for c in chunks)
    if kind in ("wrong", "colluding"):
        rng = random.Random(f"wrong:{task_id}:{round_}" if kind == "wrong" else f"colluding:{task_id}")
        at = rng.randrange(len(chunks))
        chunks[at] = _flip(chunks[at], max(threshold, 1), rng)
        return b"".join(chunks)
    if kind == "garbled":
        return truth[:-1]
    if kind == "short":
        if len(chunks) > 1:
            return b"".join(chunks[:-1])
        return truth + keccak(truth)[:8]
    raise ValueError(f"unknown node behaviour {kind!r}: expected one of {', '.join(KINDS)}")


def nonce_for(task_id: int, round_: int, attempt: int = 0) -> bytes:
    """A fresh, non-zero nonce for one commitment."""
    return keccak(f"nonce:{task_id}:{round_}:{attempt}".encode())
