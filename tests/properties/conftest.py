"""Property tests of the payment and refund rules (PROTOCOL.md 3).

Profiles (Hypothesis profiles registered here, chosen by HYPOTHESIS_PROFILE; their
values are in profiles.py):

- ``quick`` (default, inside ``make test``): 20 settlement-machine runs of up to 30
  steps plus small budgets for the pure properties, on revm, and 3 machine runs and 5
  examples of each pure property on eth-tester (test_on_eth_tester.py); about ten
  seconds for the whole of tests/properties. Deterministic: a fixed seed unless
  HYPOTHESIS_SEED is given.
- ``deep`` (``make test-deep``, i.e. ``HYDROGEN_BACKEND=revm HYPOTHESIS_PROFILE=deep
  pytest tests/properties -q -s``): 256 runs of up to 500 steps on the revm fast path
  (the same contracts, bindings and ghost model) and 10x the pure budgets, plus 8
  machine runs and 20 examples of each pure property on eth-tester; the session ends
  with its run count, step count, wall time and the outcomes reached. Its seed is
  drawn at random and printed in that summary.
- ``mutation`` (``python -m bench.mutation``; MUTATION_PROFILE picks another): 400
  runs of up to 50 steps, no shrinking, no example database, fixed seed
  (``--seed`` gives another).

Reproducing a run: ``HYPOTHESIS_SEED=<n>`` (decimal or 0x-hex) seeds the machine and
every pure property test, e.g. ``HYPOTHESIS_SEED=123 HYPOTHESIS_PROFILE=deep pytest
tests/properties -q -s``; the seed in use is printed in the summary ("settlement
machine [deep profile, seed N]"). Collect the same files as the run being reproduced:
Hypothesis also draws on literal constants of the loaded test modules.

Failing examples: a failing machine run is saved in Hypothesis's example database
(``.hypothesis/examples``, the default DirectoryBasedExampleDatabase) and replayed
first on the next run until it passes; the report prints the shrunk steps, each with
a note in protocol words ("app1 createTask -> task 1 [node3,node1,node5]", "node3
commit wrong on task 1 round 0"), and a ``@reproduce_failure`` blob (print_blob).
Hypothesis's ``@seed`` turns the database off, so the seeded pure tests do not use it.

Backend: revm (pyrevm) by default, for speed: every property runs its whole budget
there. ``HYDROGEN_BACKEND=in-memory`` runs them all on the in-memory eth-tester chain
instead. Either way test_on_eth_tester.py runs a small budget of each on eth-tester,
so the eth-tester path (transactions, blocks, snapshots) stays under the properties.

Contracts under test: ``HYDROGEN_CONTRACTS_DIR=<dir>`` compiles CNX/Node/Task from that
folder instead of ``contracts/`` (the mutation check points it at mutants).

The profile is loaded for the whole session: Hypothesis tests elsewhere inherit what
they do not set themselves (today's ones set max_examples and deadline, so they only
pick up print_blob and the relaxed slow-data health checks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.properties.profiles import PROFILES, STATS, profile_name
from tests.properties.world import World, backend_name

for _name, _kwargs in PROFILES.items():
    settings.register_profile(_name, **_kwargs)
settings.load_profile(profile_name())


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    """The deployment every property test starts from (reverted to after each example)."""
    yield World.build()


@pytest.fixture(scope="session")
def tester_world(request: pytest.FixtureRequest) -> World:
    """The same deployment on eth-tester (test_on_eth_tester.py): `world` itself when
    that is already on eth-tester (HYDROGEN_BACKEND=in-memory)."""
    if backend_name() == "in-memory":
        world: World = request.getfixturevalue("world")
        return world
    return World.build(backend="in-memory")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not STATS.runs:
        return  # the machine ran in another process (xdist) or not at all
    terminalreporter.section("settlement machine")
    terminalreporter.write_line(STATS.summary())
    terminalreporter.write_line("outcomes reached (calls, by what the model predicted):")
    terminalreporter.write_line(STATS.outcome_table())
