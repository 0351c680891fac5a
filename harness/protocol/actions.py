"""What an actor (a simulated node, the application client) did, as a typed record.

Actors append an `Action` to their `.actions` list each time they act; the
simulation's timeline and the sandbox's log read them. `what` is the text shown
everywhere; `kind` says what sort of action it was, so readers filter on the
kind rather than on words in the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import NamedTuple, Protocol

__all__ = ["Action", "ActionCursor", "ActionKind", "Actor"]


class ActionKind(Enum):
    TRANSACTION = "transaction"  # mined on the normal path: join, pause, commit, disclose, createTask, approve...
    RELAY = "relay"  # a Relay request that went through: args uploaded, images uploaded or downloaded
    ERROR_REPORT = "error report"  # a node gives up on a task: why, then its reportTaskError
    CANCEL = "cancel"  # cancelTask once the deadline has passed
    FAILURE = "failure"  # what did not work: a revert, a failed upload or resume, a crash
    INFO = "info"  # bookkeeping, nothing sent: a task taken back after a restart


class Action(NamedTuple):
    """One thing an actor did: the task it concerns (None: the actor's own), the text, its kind."""

    task_id: int | None
    what: str
    kind: ActionKind


class Actor(Protocol):
    """What the network and the sandbox drive: a simulated node or an application."""

    name: str

    @property
    def actions(self) -> Sequence[Action]: ...

    def step(self) -> bool:
        """Act at most once on what the actor knows; True if it did anything."""
        ...


class ActionCursor:
    """An actor's actions not read yet: each action is handed out once, in order."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self._seen = 0

    def new(self) -> Sequence[Action]:
        actions = self.actor.actions
        fresh = actions[self._seen :]
        self._seen = len(actions)
        return fresh

    def reset(self) -> None:
        """Read from the first action again (the actor's list was cleared)."""
        self._seen = 0
