"""The sandbox's live dashboard: tasks, nodes, the CNX ledger and result images in a
browser page, updated by server-sent events as blocks are mined, with controls (time,
nodes, Relay faults) that are also a JSON API. `hydrogen-harness sandbox` serves it on
`--dashboard-port` (default 8090)."""

from hydrogen_harness.sandbox.dashboard.app import Dashboard
from hydrogen_harness.sandbox.dashboard.controls import ControlError
from hydrogen_harness.sandbox.dashboard.view import DashboardView, TaskStatus

__all__ = ["ControlError", "Dashboard", "DashboardView", "TaskStatus"]
