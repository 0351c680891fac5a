"""cnx_app: a small Hydrogen Network application, written only with web3, eth-account
and httpx, as for the real network. Its tests (next to this package) run it against
the `hydrogen_sandbox` pytest fixture, unchanged."""

from cnx_app.client import CnxApp, TaskFailed, TaskReport, args_json
from cnx_app.relay_signing import go_json, sign_request

__all__ = ["CnxApp", "TaskFailed", "TaskReport", "args_json", "go_json", "sign_request"]
