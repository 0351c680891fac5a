"""Root conftest: the hydrogen-harness plugin comes from its pytest11 entry point,
so nothing needs registering here; this file pins the test root for pytest."""
