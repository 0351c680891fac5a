"""The unfinished entries of a growing dict (an application's jobs, a node's tasks),
without a scan of the whole dict at every step: scanning every job or task ever seen,
several times a step, made each task slower than the one before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["UnfinishedIndex"]

K = TypeVar("K")
V = TypeVar("V")


class UnfinishedIndex(Generic[K, V]):
    """The entries of a dict not yet seen finished, in the dict's order. Finished is
    final, so an entry seen finished is dropped for good. The index is rebuilt from the
    dict when it is another dict or its size moved other than through `added`;
    `forget()` forces a rebuild (entries replaced in place)."""

    def __init__(self, finished: Callable[[V], bool]) -> None:
        self._finished = finished
        self._open: dict[K, V] = {}
        self._of: dict[K, V] | None = None
        self._size = 0

    def forget(self) -> None:
        self._of = None

    def added(self, source: dict[K, V], key: K, value: V) -> None:
        """`source[key] = value` was just done: keeps the index current if it was."""
        if source is self._of and self._size == len(source) - 1:
            self._open[key] = value
            self._size += 1

    def unfinished(self, source: dict[K, V]) -> list[V]:
        if source is not self._of or len(source) != self._size:
            self._open = {key: value for key, value in source.items() if not self._finished(value)}
            self._of, self._size = source, len(source)
        found = []
        for key, value in list(self._open.items()):
            if self._finished(value) or source.get(key) is not value:
                del self._open[key]
            else:
                found.append(value)
        return found
