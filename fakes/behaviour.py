"""What a simulated node does, as data: a kind of work plus optional faults.

Written as text for command lines and markers: `honest`, `jitter`, `cheater`,
`error`, `crash:before_commit` (any `CrashPoint`), `slow:3` (acts every 3rd
step), `offline`; combine with `+`, as in `cheater+slow:2`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Behaviour", "CrashPoint", "WorkKind", "behaviour_mix"]


class WorkKind(str, Enum):
    HONEST = "honest"  # generates the true images
    JITTER = "jitter"  # true images plus pixel noise: hashes stay within the threshold
    CHEATER = "cheater"  # images of other args: a result far from the others
    ERROR = "error"  # reports a task error instead of committing


class CrashPoint(str, Enum):
    """Protocol steps at which a node can die (it never acts again)."""

    BEFORE_COMMIT = "before_commit"
    AFTER_COMMIT = "after_commit"
    BEFORE_DISCLOSE = "before_disclose"
    BEFORE_UPLOAD = "before_upload"
    BEFORE_REPORT = "before_report"


@dataclass(frozen=True)
class Behaviour:
    kind: WorkKind = WorkKind.HONEST
    crash_at: CrashPoint | None = None
    every: int = 1
    offline: bool = False

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"a slow node acts every k >= 1 steps, got {self.every}")

    @classmethod
    def parse(cls, text: str) -> Behaviour:
        kind, crash, every, offline = WorkKind.HONEST, None, 1, False
        for part in (p.strip() for p in text.split("+")):
            name, _, value = part.partition(":")
            if name in WorkKind._value2member_map_ and not value:
                kind = WorkKind(name)
            elif name == "crash":
                try:
                    crash = CrashPoint(value)
                except ValueError:
                    points = ", ".join(p.value for p in CrashPoint)
                    raise ValueError(f"unknown crash point {value!r} in {text!r}: expected one of {points}") from None
            elif name == "slow":
                if not value.isdigit():
                    raise ValueError(f"slow needs a step count, as in 'slow:3', got {part!r}")
                every = int(value)
            elif name == "offline" and not value:
                offline = True
            else:
                kinds = ", ".join(k.value for k in WorkKind)
                raise ValueError(f"unknown behaviour {part!r} in {text!r}: expected {kinds}, crash:POINT, slow:K or offline")
        return cls(kind=kind, crash_at=crash, every=every, offline=offline)

    def __str__(self) -> str:
        parts = [self.kind.value]
        if self.crash_at is not None:
            parts.append(f"crash:{self.crash_at.value}")
        if self.every != 1:
            parts.append(f"slow:{self.every}")
        if self.offline:
            parts.append("offline")
        return "+".join(parts)


def behaviour_mix(text: str, count: int) -> list[str]:
    """`count` behaviours from a comma-separated list, padded with honest ones.

    Each is parsed, so a bad name fails here with the list of good ones."""
    given = [part.strip() for part in text.split(",")] if text.strip() else []
    if any(not part for part in given):
        raise ValueError(f"an empty behaviour in {text!r}: name one between every two commas")
    for item in given:
        Behaviour.parse(item)
    if len(given) > count:
        raise ValueError(f"{len(given)} behaviours given for {count} nodes")
    return given + ["honest"] * (count - len(given))
