"""Shared fixtures of the project's own tests (on top of the plugin's)."""

from __future__ import annotations

import pytest

from harness.contracts import Deployment


@pytest.fixture
def contracts(hydrogen_contracts: Deployment) -> Deployment:
    """Short name for the isolated deployment."""
    return hydrogen_contracts
