"""Every command-line option is checked before any work starts: a one-line error
naming the option and the value, exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hydrogen_harness.cli.main import main

BAD = [
    (["simulate", "--tasks", "0"], "--tasks: must be from 1"),
    (["simulate", "--tasks", "-1"], "--tasks: must be from 1"),
    (["simulate", "--tasks", "many"], "--tasks: expected a whole number, got 'many'"),
    (["simulate", "--images", "0"], "--images: must be from 1 to 10"),
    (["simulate", "--images", "11"], "--images: must be from 1 to 10"),
    (["simulate", "--size", "0"], "--size: must be from 8"),
    (["simulate", "--size", "-64"], "--size: must be from 8"),
    (["simulate", "--size", "12"], "--size: must be a multiple of 8"),
    (["simulate", "--nodes", "2"], "--nodes: must be from 3"),
    (["simulate", "--out", "/etc/hostname"], "--out: /etc/hostname exists and is not a folder"),
    (["simulate", "--backend", "anvil"], "--backend: invalid choice: 'anvil'"),
    (["simulate", "--out", "/etc/hostname/x"], "/etc/hostname is not a folder"),
    (["sandbox", "--rpc-port", "99999"], "--rpc-port: must be from 0 to 65535"),
    (["sandbox", "--rpc-port", "-1"], "--rpc-port: must be from 0 to 65535"),
    (["sandbox", "--relay-port", "70000"], "--relay-port: must be from 0 to 65535"),
    (["sandbox", "--state", "/etc/hostname"], "--state: /etc/hostname exists and is not a folder"),
    (["sandbox", "--nodes", "-3"], "--nodes: must be from 0"),
    (["sandbox", "--block-time", "-1"], "--block-time: must be from 0"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_option_is_refused_before_anything_runs(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--behaviours", ",,,"], "an empty behaviour"),
        (["simulate", "--behaviours", "honest,wizard"], "wizard"),
        (["simulate", "--nodes", "3", "--behaviours", "honest,honest,honest,cheater"], "4 behaviours given for 3 nodes"),
        (["sandbox", "--nodes", "2"], "a task needs 3 nodes"),
        (["sandbox", "--no-automine", "--block-time", "0"], "nothing would ever be mined"),
    ],
)
def test_bad_combinations_are_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.out + captured.err


def test_the_default_mix_is_cut_to_the_nodes_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--tasks", "1", "--nodes", "3", "--images", "1", "--size", "64", "--quiet", "--out", str(tmp_path / "sim")]) == 0
    assert "task 1: success" in capsys.readouterr().out
    assert (tmp_path / "sim" / "report.json").is_file()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({}, "each transaction at once and a block every 1 s while idle; the head at most 5 s ahead"),
        ({"automine": False}, "a block every 1 s; the head"),
        ({"block_time": None}, "each transaction at once; the head"),
        ({"anvil": True}, "the node's own, and a block every 1 s while idle (evm_mine)"),
        ({"rpc_url": "http://127.0.0.1:1"}, "the node's own"),
    ],
)
def test_the_summary_says_how_blocks_are_made(options: dict, says: str) -> None:
    from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions

    assert Sandbox(SandboxOptions(**options), log=lambda _: None).mining_note().startswith(says)
