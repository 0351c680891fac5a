"""The built wheel in a fresh environment, under a user project that has its own
`harness` and `fakes` packages: ours install as `hydrogen_harness` only, so the
user's modules import (once `fakes.behaviour` did not: our `fakes` shadowed theirs)
and our fixtures work beside them.

The fresh venv sees the third-party packages of the running one through a `.pth`
line naming its site-packages. Such a line only adds the folder to sys.path; the
`.pth` files inside it are not run, so our editable install's finder stays out and
`hydrogen_harness` can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.user_runs import lean

ROOT = Path(__file__).resolve().parents[2]
# What a wheel build reads: the metadata and the three folders that install as hydrogen_harness.
BUILD_INPUTS = ("pyproject.toml", "README.md", "MANIFEST.in", "harness", "fakes", "contracts")
TIMEOUT = 600

USER_FILES = {
    "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n',
    "harness/__init__.py": 'NAME = "the user\'s harness"\n',
    "harness/behaviour.py": 'HONEST = "user-honest"\n',
    "fakes/__init__.py": 'NAME = "the user\'s fakes"\n',
    "fakes/behaviour.py": 'LAZY = "user-lazy"\n',
    "tests/test_user.py": '''
import fakes
import harness
from fakes.behaviour import LAZY
from harness.behaviour import HONEST

from hydrogen_harness import CNX, TaskOutcome

ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 1, "image_width": 64, "image_height": 64}}


def test_my_own_packages_are_mine():
    assert harness.NAME == "the user's harness"
    assert HONEST == "user-honest"
    assert fakes.NAME == "the user's fakes"
    assert LAZY == "user-lazy"


def test_the_token_holds_the_whole_supply(hydrogen_contracts):
    assert hydrogen_contracts.token.total_supply() == 4_351_443_962 * CNX


def test_one_task_succeeds(hydrogen_network, hydrogen_app):
    key = hydrogen_app.submit(ARGS)
    hydrogen_network.settle()
    assert hydrogen_app.result(key).outcome is TaskOutcome.SUCCESS
''',
}


def _clean_env() -> dict[str, str]:
    """The user's environment: none of our PYTHONPATH, venv or pytest (xdist) variables."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PYTEST_")}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (a build writes build/ and egg-info
    next to them, which must not land in the working tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)]
    done = _run(command, cwd=out)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("hydrogen_harness-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel, and the running venv's third-party packages."""
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=TIMEOUT)
    python = folder / "bin" / "python"
    # The running pip installs into the new venv (`--python`), which saves bootstrapping its own.
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)]
    done = _run(install, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    find = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.run([str(python), "-c", find], capture_output=True, text=True, check=True, timeout=TIMEOUT).stdout.strip())
    parents = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "parent-venv.pth").write_text("".join(f"{path}\n" for path in parents))
    return python


def test_the_wheel_installs_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"hydrogen_harness", wheel.name.split("-py")[0] + ".dist-info"}
    for needed in (
        "hydrogen_harness/py.typed",
        "hydrogen_harness/fakes/node.py",
        "hydrogen_harness/contract_sources/Task.vy",
        "hydrogen_harness/chain/abi/task.json",
    ):
        assert needed in names


def test_the_fresh_venv_imports_us_from_the_wheel_only(venv_python: Path) -> None:
    probe = (
        "import importlib.util, json, hydrogen_harness\n"
        "print(json.dumps({'file': hydrogen_harness.__file__, "
        "'top_level': [m for m in ('harness', 'fakes') if importlib.util.find_spec(m)]}))"
    )
    done = _run([str(venv_python), "-c", probe], cwd=venv_python.parent)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["file"]).is_relative_to(venv_python.parent.parent), found["file"]
    assert found["top_level"] == []


def test_a_user_project_with_its_own_harness_and_fakes(venv_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "user-project"
    for name, text in USER_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)

    # One run: "3 passed" says all three were collected (a collection error would fail it).
    ran = _run([str(venv_python), "-m", "pytest", *lean("-q", "-p", "no:cacheprovider")], cwd=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout, ran.stdout
