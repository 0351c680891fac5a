"""The index of unfinished jobs and tasks that Application.pending() and a node's
active() read every step."""

from __future__ import annotations

from dataclasses import dataclass

from hydrogen_harness.client.unfinished import UnfinishedIndex


@dataclass
class Work:
    name: str
    done: bool = False


def test_unfinished_entries_in_order_and_a_finished_one_dropped_for_good() -> None:
    works = {i: Work(f"w{i}") for i in range(4)}
    index: UnfinishedIndex[int, Work] = UnfinishedIndex(lambda w: w.done)
    assert [w.name for w in index.unfinished(works)] == ["w0", "w1", "w2", "w3"]
    works[1].done = True
    assert [w.name for w in index.unfinished(works)] == ["w0", "w2", "w3"]
    works[1].done = False  # cannot happen to a job or task; the index has let it go
    assert [w.name for w in index.unfinished(works)] == ["w0", "w2", "w3"]


def test_added_keeps_the_index_and_other_changes_rebuild_it() -> None:
    works = {0: Work("a"), 1: Work("b", done=True)}
    index: UnfinishedIndex[int, Work] = UnfinishedIndex(lambda w: w.done)
    assert [w.name for w in index.unfinished(works)] == ["a"]
    works[2] = Work("c")
    index.added(works, 2, works[2])
    assert [w.name for w in index.unfinished(works)] == ["a", "c"]
    works[3] = Work("d")  # added without telling the index: its size gives it away
    assert [w.name for w in index.unfinished(works)] == ["a", "c", "d"]
    del works[0]
    assert [w.name for w in index.unfinished(works)] == ["c", "d"]
    other = {9: Work("z")}
    index.added(other, 9, other[9])  # another dict: nothing kept from it
    assert [w.name for w in index.unfinished(other)] == ["z"]


def test_an_entry_replaced_in_place_is_seen_after_forget() -> None:
    works = {0: Work("a", done=True), 1: Work("b")}
    index: UnfinishedIndex[int, Work] = UnfinishedIndex(lambda w: w.done)
    assert [w.name for w in index.unfinished(works)] == ["b"]
    works[0] = Work("a again")  # same size, a new object (a resumed task)
    works[1] = Work("b again")
    assert [w.name for w in index.unfinished(works)] == []  # the stale entry is not returned
    index.forget()
    assert [w.name for w in index.unfinished(works)] == ["a again", "b again"]
