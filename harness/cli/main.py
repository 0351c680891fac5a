"""The `hydrogen-harness` command line: `simulate`, `sandbox`, `contracts`, `abi`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hydrogen_harness.cli.options import count, image_size, node_behaviours, output_folder
from hydrogen_harness.cli.sandbox import add_sandbox_arguments, run_sandbox_command

__all__ = ["main"]

DEFAULT_MIX = "honest,honest,honest,jitter,cheater,honest"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hydrogen-harness",
        description="Simulate and test applications of the Crynux Hydrogen Network.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = commands.add_parser("simulate", help="run tasks through simulated nodes on the in-memory chain")
    sim.add_argument("--tasks", type=count(1, 100_000), default=5, help="number of tasks (default 5)")
    sim.add_argument("--nodes", type=count(3, 100_000, ": a task needs 3"), default=6, help="number of nodes (default 6)")
    sim.add_argument(
        "--behaviours",
        default=None,
        help="comma-separated node behaviours, padded with honest: honest, jitter, cheater, error, "
        f"crash:POINT, slow:K, offline, combined with + (default {DEFAULT_MIX}, cut to --nodes)",
    )
    sim.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    sim.add_argument("--images", type=count(1, 10, " (PROTOCOL.md 5: num_images)"), default=2, help="images per task (default 2)")
    sim.add_argument("--size", type=image_size, default=256, help="image width and height in pixels, a multiple of 8 (default 256)")
    sim.add_argument(
        "--out", type=output_folder, default=Path("out/simulation"), help="folder for images and report.json"
    )
    sim.add_argument(
        "--backend",
        choices=("eth-tester", "revm"),
        default="eth-tester",
        help="the in-memory chain: eth-tester (py-evm, default) or revm (the same report, several times faster)",
    )
    sim.add_argument("--quiet", action="store_true", help="print only the summary line")

    commands.add_parser("contracts", help="compile the contracts and print their gas table")

    abi = commands.add_parser("abi", help="print a contract's ABI as JSON (token, node or task)")
    abi.add_argument("name", choices=("token", "node", "task"), help="which contract")

    sandbox = commands.add_parser("sandbox", help="serve the network on 127.0.0.1: JSON-RPC, Relay and simulated nodes")
    add_sandbox_arguments(sandbox)
    return parser


def _simulate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from hydrogen_harness.cli.render import print_report
    from hydrogen_harness.sim.simulate import run_simulation

    console = Console()
    try:
        if args.behaviours is None:  # the default mix, cut to the nodes asked for
            behaviours = node_behaviours(",".join(DEFAULT_MIX.split(",")[: args.nodes]), args.nodes)
        else:
            behaviours = node_behaviours(args.behaviours, args.nodes)
        args.out.mkdir(parents=True, exist_ok=True)  # before the run, not after it
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    with Progress(console=console, transient=True, disable=args.quiet) as progress:
        bar = progress.add_task("tasks", total=args.tasks)
        report = run_simulation(
            tasks=args.tasks,
            nodes=behaviours,
            seed=args.seed,
            images=args.images,
            size=args.size,
            out=args.out,
            progress=lambda done: progress.update(bar, completed=done),
            backend=args.backend,
        )
    if not args.quiet:
        print_report(report, console)
    outcomes = ", ".join(f"task {t.number}: {t.outcome}" for t in report.tasks)
    console.print(f"{outcomes}\nimages and report.json written to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "sandbox":
        return run_sandbox_command(args)
    if args.command == "abi":
        from hydrogen_harness.chain.abis import abi_text

        sys.stdout.write(abi_text(args.name))
        return 0
    if args.command == "contracts":
        from hydrogen_harness.chain.gas_report import print_gas_report

        print_gas_report()
        return 0
    parser.print_help()
    return 0 if args.command is None else 2


if __name__ == "__main__":
    sys.exit(main())
