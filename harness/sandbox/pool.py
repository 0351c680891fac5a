"""The fixture's pool of simulated nodes, and which of them a test gets.

A session sandbox runs one pool of nodes, joined once at start-up: for each
behaviour, as many nodes as the most demanding test asks for (read from the
`hydrogen_nodes` markers of the collected tests), and at least the three honest
nodes every unmarked test gets. A test gets its nodes by pausing the others
(inside its snapshot, so that is reverted too); the contract selects only
AVAILABLE nodes, so the paused ones can never be given a task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from hydrogen_harness.fakes.behaviour import Behaviour

__all__ = ["DEFAULT_NODES", "NodePoolTooSmall", "assign", "normalise", "pool_for"]

DEFAULT_NODES = ("honest", "honest", "honest")


class NodePoolTooSmall(ValueError):
    """A test wants more nodes of a behaviour than the session's pool runs."""


def normalise(behaviour: str) -> str:
    """The behaviour's canonical text (`cheater+slow:2`), or ValueError naming it."""
    return str(Behaviour.parse(behaviour))


def pool_for(specs: Iterable[Sequence[str]]) -> list[str]:
    """The fewest behaviours serving every spec: honest ones first (the default three
    lead), then the others in the order first asked for."""
    counts: Counter[str] = Counter(DEFAULT_NODES)
    for spec in specs:
        for behaviour, count in Counter(normalise(b) for b in spec).items():
            counts[behaviour] = max(counts[behaviour], count)
    return [behaviour for behaviour, count in counts.items() for _ in range(count)]


def assign(pool: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Indices into `pool` for `wanted`, in its order: the first free node of each behaviour."""
    taken: set[int] = set()
    chosen = []
    for behaviour in wanted:
        canonical = normalise(behaviour)
        index = next((i for i, b in enumerate(pool) if b == canonical and i not in taken), None)
        if index is None:
            have = sum(1 for b in pool if b == canonical)
            need = sum(1 for b in wanted if normalise(b) == canonical)
            raise NodePoolTooSmall(
                f"{need} {canonical!r} node(s) wanted, the sandbox runs {have}; the fixture sizes its pool "
                "from the hydrogen_nodes markers of the collected tests (a marker added at run time is not seen)"
            )
        taken.add(index)
        chosen.append(index)
    return chosen
