"""Options for the pytest sessions the suite starts, where a user's suite meets the
installed plugin (pytester's `runpytest_inprocess` and `runpytest_subprocess`, the
packaging test's fresh venv).

Such a session loads every installed pytest plugin by its entry point, ours among them.
The others installed here (our dev tools) are never used by those users' suites, yet
each costs every session its import and pytest's assertion rewriting of its modules:
about 2 s of a 3-6 s subprocess session for schemathesis and Hypothesis alone. `lean()` blocks
them by name (`-p no:NAME`), so they are not even imported; ours still comes from its
entry point. tests/e2e/test_plugin.py keeps one session with every plugin loaded, to
show ours works beside them.
"""

from __future__ import annotations

__all__ = ["UNUSED_PLUGINS", "lean"]

# Entry-point names (pytest11) of the installed plugins the users' suites do not use.
UNUSED_PLUGINS = ("schemathesis", "hypothesispytest", "anyio", "respx", "xdist", "xdist.looponfail")


def lean(*args: str) -> list[str]:
    """`args`, then `-p no:NAME` for each of UNUSED_PLUGINS."""
    return [*args, *(option for name in UNUSED_PLUGINS for option in ("-p", f"no:{name}"))]
