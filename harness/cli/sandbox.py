"""The `sandbox` subcommand's options, and turning them into a running sandbox.

Kept apart from `hydrogen_harness.cli.main` (which only registers and dispatches) and light to
import: the heavy modules load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hydrogen_harness.cli.options import count, node_behaviours, port, state_folder

__all__ = ["add_sandbox_arguments", "run_sandbox_command"]


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rpc-port", type=port, default=8545, help="JSON-RPC port of the in-memory chain or anvil (default 8545; 0: any free port)"
    )
    parser.add_argument("--relay-port", type=port, default=8080, help="Relay port (default 8080; 0: any free port)")
    parser.add_argument(
        "--dashboard-port", type=port, default=8090, help="port of the live dashboard page (default 8090; 0: any free port)"
    )
    chain = parser.add_mutually_exclusive_group()
    chain.add_argument("--rpc-url", help="deploy on this JSON-RPC node instead of the in-memory chain")
    chain.add_argument("--anvil", action="store_true", help="start anvil (installed in .cache/anvil, see examples/README.md)")
    parser.add_argument("--rpc-key", help="funded private key for --rpc-url (default: anvil's first dev key)")
    parser.add_argument("--state", type=state_folder, default=Path(".sandbox"), help="state folder (default .sandbox)")
    parser.add_argument(
        "--nodes", type=count(0, 1000), default=6, help="number of simulated nodes (default 6; 0: none, bring your own)"
    )
    parser.add_argument(
        "--behaviours",
        default=None,
        help="comma-separated node behaviours as for simulate, padded with honest (default honest)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the wallets' keys and the chain (default 0)")
    parser.add_argument("--reset", action="store_true", help="forget the chain and the Relay's data of earlier runs")
    parser.add_argument("--verbose", action="store_true", help="also log every node action")
    mining = parser.add_argument_group("mining of the in-memory chain (anvil's modes)")
    mining.add_argument(
        "--block-time",
        type=count(0, 3600),
        default=1,
        help="seconds between blocks while idle, so time passes (default 1; 0: only when transactions come)",
    )
    mining.add_argument(
        "--no-automine",
        action="store_true",
        help="do not mine each transaction as it comes: only every --block-time seconds (as anvil --no-mining --block-time)",
    )


def run_sandbox_command(args: argparse.Namespace) -> int:
    """Run the sandbox until SIGINT/SIGTERM; 2 on bad options or if it cannot start."""
    if args.no_automine and not args.block_time:
        print("error: --no-automine needs --block-time N (N > 0): nothing would ever be mined", file=sys.stderr)
        return 2
    if args.nodes != 0 and args.nodes < 3:
        # 0 is "bring your own"; 1 or 2 simulated nodes could never run a task alone.
        print(f"error: a task needs 3 nodes; got --nodes {args.nodes} (--nodes 0: bring your own nodes)", file=sys.stderr)
        return 2
    try:
        behaviours = node_behaviours(args.behaviours or "", args.nodes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from hydrogen_harness.sandbox.core import SandboxOptions, run_sandbox
    from hydrogen_harness.sandbox.anvil import ANVIL_FIRST_KEY

    options = SandboxOptions(
        state=args.state,
        rpc_port=args.rpc_port,
        relay_port=args.relay_port,
        dashboard_port=args.dashboard_port,
        rpc_url=args.rpc_url,
        rpc_key=args.rpc_key or ANVIL_FIRST_KEY,
        anvil=args.anvil,
        behaviours=behaviours,
        seed=args.seed,
        reset=args.reset,
        verbose=args.verbose,
        automine=not args.no_automine,
        block_time=float(args.block_time) if args.block_time else None,
    )
    return run_sandbox(options)
