"""Budgets, seeds and run statistics of the property tests (conftest.py registers
the Hypothesis profiles from `PROFILES`; the tests read their budgets here)."""

from __future__ import annotations

import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, seed, settings

__all__ = ["LONG_RUN", "PROFILES", "STATS", "Budget", "RunStats", "budget", "long_runs_required", "profile_name", "run_seed", "seeded"]

PROFILE_ENV = "HYPOTHESIS_PROFILE"
SEED_ENV = "HYPOTHESIS_SEED"
QUICK_SEED = 20231114
LONG_RUN = 50  # steps; the deep profile completes 256 runs at least this long
PROGRESS_EVERY = 32  # completed runs between two progress lines of a deep run  # the quick and mutation profiles are deterministic by default

_COMMON: dict[str, Any] = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}

# max_examples and stateful_step_count are those of the settlement machine; the
# pure tests take theirs from `Budget`.
PROFILES: dict[str, dict[str, Any]] = {
    # Inside `make test` (on revm, plus test_on_eth_tester.py): the whole of tests/properties
    # in about ten seconds.
    "quick": {**_COMMON, "max_examples": 20, "stateful_step_count": 30},
    # `make test-deep`: 256 runs of up to 500 steps (Foundry's invariant-testing
    # defaults), on the revm fast path (HYDROGEN_BACKEND=revm, the default).
    "deep": {**_COMMON, "max_examples": 256, "stateful_step_count": 500},
    # `python -m bench.mutation`: 400 runs of 50 steps (~30 s a pass on revm; at 100 runs some
    # mutants escaped under some seeds). A failure is all we need, so no shrinking, and no
    # example database (a mutant's failures must not be replayed on the real contracts).
    "mutation": {
        **_COMMON,
        "max_examples": 400,
        "stateful_step_count": 50,
        "database": None,
        "phases": [Phase.explicit, Phase.generate],
    },
}


@dataclass(frozen=True)
class Budget:
    similarity_probe: int  # similarity through a view, ~5 ms an example
    similarity_on_chain: int  # similarity through two disclosures, ~0.3 s an example
    commitments: int  # disclosure accepted iff result and nonce match, ~0.3 s
    selection: int  # createTask picks 3 distinct AVAILABLE nodes, ~0.5 s
    # test_on_eth_tester.py: the same properties on eth-tester, whichever backend the
    # others run on (revm by default), so the eth-tester path stays covered.
    machine_on_eth_tester: int  # settlement-machine runs (the profile's steps each), ~1.5 s a 30-step run
    pure_on_eth_tester: int  # examples of each pure property, ~0.3 s each


_BUDGETS = {
    "quick": Budget(
        similarity_probe=500, similarity_on_chain=25, commitments=25, selection=20, machine_on_eth_tester=3, pure_on_eth_tester=5
    ),
    "deep": Budget(
        similarity_probe=3000, similarity_on_chain=100, commitments=100, selection=60, machine_on_eth_tester=8, pure_on_eth_tester=20
    ),
    "mutation": Budget(
        similarity_probe=300, similarity_on_chain=10, commitments=10, selection=8, machine_on_eth_tester=2, pure_on_eth_tester=3
    ),
}


def profile_name() -> str:
    name = os.environ.get(PROFILE_ENV, "quick")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r}: expected one of {', '.join(PROFILES)}")
    return name


def budget() -> Budget:
    return _BUDGETS[profile_name()]


def _draw_seed() -> int:
    configured = os.environ.get(SEED_ENV)
    if configured:
        try:
            return int(configured, 0)
        except ValueError:
            raise ValueError(f"{SEED_ENV}={configured!r} is not an integer") from None
    if profile_name() == "deep":
        return random.SystemRandom().randrange(2**32)  # printed, so the run can be replayed
    return QUICK_SEED


_SEED = _draw_seed()


def run_seed() -> int:
    """The seed of this session: HYPOTHESIS_SEED, else fixed (quick, mutation) or drawn (deep)."""
    return _SEED


F = TypeVar("F", bound=Callable[..., Any])


def seeded(test: F, batch: int = 0) -> F:
    """Apply the session seed (plus `batch`, for a further batch of runs) to a @given
    test or a state-machine factory."""
    return seed(_SEED + batch)(test)


def long_runs_required() -> int:
    """How many runs of at least LONG_RUN steps the machine must complete: 256 in the
    deep profile (issue 5), where Hypothesis ends some runs early; none otherwise."""
    return 256 if profile_name() == "deep" else 0


@dataclass
class RunStats:
    """What the settlement machine did in this process, for the end-of-session report."""

    batches: int = 0  # calls of run_state_machine_as_test
    runs: int = 0  # completed runs (their steps are counted)
    full_runs: int = 0  # completed runs that reached stateful_step_count steps
    long_runs: int = 0  # completed runs of at least LONG_RUN steps (issue 5's yardstick)
    steps: int = 0
    failed_runs: int = 0  # runs that found a divergence (shrinking replays included)
    dropped_runs: int = 0  # runs Hypothesis dropped as invalid (no rule could go on)
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)
    name: str = "settlement machine"

    def summary(self) -> str:
        per_run = self.steps / self.runs if self.runs else 0.0
        rate = self.steps / self.seconds if self.seconds else 0.0
        return (
            f"{self.name} [{profile_name()} profile, {self._seeds()}]: {self.runs} runs "
            f"({self.long_runs} of at least {LONG_RUN} steps, {self.full_runs} of the full "
            f"{settings.default.stateful_step_count}), "
            f"{self.steps} steps ({per_run:.1f} per run), {self.seconds:.1f} s wall time, {rate:.1f} steps/s; "
            f"{self.dropped_runs} runs dropped as invalid, {self.failed_runs} failing"
        )

    def show_progress(self) -> None:
        """In the deep profile, a line on stderr every PROGRESS_EVERY completed runs:
        a deep run takes minutes."""
        if profile_name() != "deep" or self.runs % PROGRESS_EVERY:
            return
        required = long_runs_required()
        print(
            f"settlement machine: {self.runs} runs, {self.long_runs}/{required} of {LONG_RUN}+ steps, "
            f"{self.steps} steps, {self.failed_runs} failing, {time.perf_counter() - self.started:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def _seeds(self) -> str:
        if self.batches <= 1:
            return f"seed {_SEED}"
        return f"seed {_SEED}, {self.batches} batches (seeds {_SEED}..{_SEED + self.batches - 1})"

    def outcome_table(self) -> str:
        return "\n".join(f"  {count:6d}  {what}" for what, count in sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0])))


STATS = RunStats()
