"""The pytest plugin as a user meets it: installed, registered by its entry point.

One user's session runs in a subprocess, as a user starts pytest; the others run in this
process (pytester's runpytest_inprocess: a new session that loads the plugins by their entry
points all the same), which spares each about 2.5 s of CPU importing the harness again."""

from __future__ import annotations

import pytest

from tests.user_runs import lean

pytest_plugins = ["pytester"]

USER_TESTS = '''
import pytest
from hydrogen_harness.client.app import TaskOutcome

ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 1, "image_width": 64, "image_height": 64}}

def test_my_app(hydrogen_network):
    app = hydrogen_network.add_app()
    key = app.submit(ARGS)
    hydrogen_network.settle()
    assert app.result(key).outcome is TaskOutcome.SUCCESS

@pytest.mark.hydrogen_nodes("honest", "cheater", "honest")
def test_a_cheater_is_slashed(hydrogen_network):
    app = hydrogen_network.add_app()
    key = app.submit(ARGS)
    hydrogen_network.settle()
    assert app.result(key).refunds == 10 * 10**18

def test_not_enough_nodes(hydrogen_contracts, hydrogen_expect_revert):
    app = hydrogen_contracts.new_app(approve=30 * 10**18)
    with hydrogen_expect_revert("Not enough nodes"):
        hydrogen_contracts.task.create_task(app, b"\\x01" * 32)

def test_isolated(hydrogen_contracts):
    assert hydrogen_contracts.task.total_tasks() == 0
'''


def test_a_user_suite_runs_on_the_installed_plugin(pytester: pytest.Pytester) -> None:
    """With every installed plugin loaded (the other sessions here leave out the ones a
    user's suite does not use, see tests/user_runs.py): ours works beside them."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hydrogen-seed", "3")
    result.assert_outcomes(passed=4)


BACKEND_TESTS = '''

BACKEND_CLASS = {"in-memory": "TesterBackend", "revm": "RevmBackend"}

def test_the_chosen_backend_is_under_every_fixture(hydrogen_chain, hydrogen_contracts, hydrogen_network, pytestconfig):
    expected = BACKEND_CLASS[pytestconfig.getoption("--hydrogen-backend")]
    for chain in (hydrogen_chain, hydrogen_contracts.chain, hydrogen_network.chain):
        assert type(chain.backend).__name__ == expected

def test_my_app_on_hydrogen_app(hydrogen_network, hydrogen_app):
    result = hydrogen_app.run(ARGS, idle=hydrogen_network.step)
    assert result.outcome is TaskOutcome.SUCCESS
    assert len(result.images) == 1
'''


@pytest.mark.parametrize("backend", ["in-memory", "revm"])
def test_a_user_suite_runs_on_the_chosen_backend(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(test_user=USER_TESTS + BACKEND_TESTS)
    result = pytester.runpytest_inprocess(*lean("-p", "no:cacheprovider", "--hydrogen-seed", "3", "--hydrogen-backend", backend))
    result.assert_outcomes(passed=6)


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*lean("--fixtures"))
    text = result.stdout.str()
    for fixture in ("hydrogen_network", "hydrogen_app", "hydrogen_nodes", "hydrogen_relay", "hydrogen_contracts", "hydrogen_chain"):
        assert fixture in text
    assert "isolated per test: every change is reverted when the test ends" in text
