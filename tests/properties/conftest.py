"""Property tests of the payment and refund rules (PROTOCOL.md 3).

Profiles (Hypothesis profiles registered here, chosen by HYPOTHESIS_PROFILE):

- ``quick`` (default, inside ``make test``): 20 settlement-machine runs of 30 steps
  plus small budgets for the pure properties; about a minute in all. Deterministic:
  seeded with a fixed seed unless HYPOTHESIS_SEED says otherwise.
- ``deep`` (``make test-deep``, i.e. ``HYDROGEN_BACKEND=revm HYPOTHESIS_PROFILE=deep
  pytest tests/properties -q -s``): 256 runs of up to 500 steps on the revm fast path
  (the same contracts, bindings and ghost model; no transactions or blocks); prints its
  run count, step count, wall time and the outcomes reached at the end of the
  session. Its seed is drawn at random and printed.
- ``mutation`` (used by ``python -m bench.mutation``): 60 runs of 40 steps, no
  shrinking, no example database.

Reproducing a run: ``HYPOTHESIS_SEED=<n>`` (decimal or 0x-hex) seeds every property
test and the machine, e.g. ``HYPOTHESIS_SEED=123 HYPOTHESIS_PROFILE=deep pytest
tests/properties -q -s``. The session seed is printed in the summary line.

Failing examples: a failing machine run is saved in Hypothesis's example database
(``.hypothesis/examples``, the default DirectoryBasedExampleDatabase) and replayed
first on the next run, until it passes; the failure report also prints a
``@reproduce_failure`` blob (print_blob=True) and the shrunk steps in protocol words.
(Pure tests under a seed do not use the database: Hypothesis's ``@seed`` disables it.)

Backend: ``HYDROGEN_BACKEND=revm`` runs everything on revm (pyrevm); the default is
the in-memory eth-tester chain, which ``make test`` uses.

Contracts under test: ``HYDROGEN_CONTRACTS_DIR=<dir>`` compiles CNX/Node/Task from
that folder instead of ``contracts/`` (the mutation check points it at mutants).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.properties.profiles import PROFILES, STATS, profile_name
from tests.properties.world import World

for _name, _kwargs in PROFILES.items():
    settings.register_profile(_name, **_kwargs)
settings.load_profile(profile_name())


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    """The deployment every property test starts from (reverted to after each example)."""
    yield World.build()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not STATS.runs:
        return  # the machine ran in another process (xdist) or not at all
    terminalreporter.section("settlement machine")
    terminalreporter.write_line(STATS.summary())
    terminalreporter.write_line("outcomes reached (calls, by what the model predicted):")
    terminalreporter.write_line(STATS.outcome_table())
