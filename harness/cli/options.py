"""Argument types of the command line: every option checked up front, with a
one-line error naming the option and the value (argparse prints it), before any
work starts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

__all__ = ["count", "image_size", "node_behaviours", "output_folder", "port", "state_folder"]


def count(low: int, high: int | None = None, what: str = "") -> Callable[[str], int]:
    """An integer from `low` to `high` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}{what}, got {value}")
        return value

    return parse


def port(text: str) -> int:
    return count(0, 65535, " (0: any free port)")(text)


def image_size(text: str) -> int:
    """Stable Diffusion works in latents of 1/8 the image size: sides are multiples of 8."""
    value = count(8, 1024)(text)
    if value % 8:
        raise argparse.ArgumentTypeError(f"must be a multiple of 8 (Stable Diffusion's latent grid), got {value}")
    return value


def node_behaviours(text: str, count: int) -> list[str]:
    """`count` behaviours from the comma-separated `text`, padded with honest;
    ValueError names a bad one."""
    from hydrogen_harness.fakes.behaviour import behaviour_mix  # when a command runs: the parser stays light

    return behaviour_mix(text, count)


def _folder(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} exists and is not a folder")
    existing = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is not a folder, so {path} cannot be made")
    import os

    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{existing} is not writable, so {path} cannot be made there")
    return path


def output_folder(text: str) -> Path:
    return _folder(text)


def state_folder(text: str) -> Path:
    return _folder(text)
