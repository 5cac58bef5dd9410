"""The suite as an adopter gets it: the wheel, installed into a fresh virtual environment, run from a
folder outside the checkout. An editable install once hid a missing subpackage and missing fixtures
for a whole release; these tests build the real wheel instead."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_in_the_tree_is_listed_in_pyproject():
    tree = {".".join(p.parent.relative_to(ROOT).parts) for pkg in ("refimpl", "conformance")
            for p in (ROOT / pkg).rglob("__init__.py")}
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert tree <= listed, f"packages missing from pyproject.toml: {sorted(tree - listed)}"
    assert listed - tree == {"conformance._fixtures"}  # fixtures/, mapped by package-dir


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy: setuptools writes build/ and *.egg-info into the tree it builds, and two
    # xdist workers building the checkout at once raced there.
    tree = tmp_path_factory.mktemp("src") / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".tox", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".*_cache", "mutants", "reports"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("*.whl")
    return path


def test_the_wheel_carries_every_subpackage_the_fixture_sets_and_the_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PYPROJECT["tool"]["setuptools"]["packages"]:
        if package != "conformance._fixtures":
            assert f"{package.replace('.', '/')}/__init__.py" in names, package
    for data in ("refimpl/py.typed", "conformance/py.typed", "conformance/deviations.json",
                 "conformance/test_implementation.py"):
        assert data in names, data
    for manifest in (ROOT / "fixtures").glob("*/manifest.json"):
        prefix = f"conformance/_fixtures/{manifest.parent.name}/"
        files = ["manifest.json", *json.loads(manifest.read_text())["files"]]
        assert all(prefix + f in names for f in files), f"{manifest.parent.name}: not all files in the wheel"


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, Path]:
    """(the fresh venv's bin folder, an empty working folder outside the checkout)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{wheel}[test]"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path_factory.mktemp("elsewhere")
    shutil.copy(ROOT / "tests" / "adapters" / "broken.py", work / "my_adapter.py")
    return bin_dir, work


def _offline_prefix() -> list[str]:
    """``unshare -n`` (a new network namespace with no interfaces up) where this machine allows it."""
    if shutil.which("unshare") is None:
        return []
    done = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return ["unshare", "-n"] if done.returncode == 0 else []


OFFLINE = _offline_prefix()


def _run(installed, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """An installed command, run from the folder outside the checkout, with no network where
    ``unshare -n`` works (an adopter's CI may have none)."""
    bin_dir, work = installed
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RNN_CONFORMANCE"))}
    return subprocess.run([*OFFLINE, str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, cwd=work,
                          timeout=900, env={**clean, "PATH": f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}",
                                            **(env or {})})


def test_the_installed_commands_run_with_the_network_cut(installed):
    if not OFFLINE:
        pytest.skip("unshare -n is not permitted on this machine, so the network cannot be cut here")
    probe = "import socket; s = socket.socket(); s.settimeout(3); s.connect(('1.1.1.1', 53))"
    done = _run(installed, "python", "-c", probe)
    assert done.returncode != 0 and "Network is unreachable" in done.stderr, done.stderr


def test_installed_cli_helps_lists_and_checks_the_shipped_sets(installed):
    assert "verify" in _run(installed, "rnn-conformance", "--help").stdout
    listed = _run(installed, "rnn-conformance", "list")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) > 700
    checked = _run(installed, "rnn-conformance", "fixtures", "check")
    assert checked.returncode == 0 and checked.stdout.count("ok ") == len(list((ROOT / "fixtures").glob("*/manifest.json")))
    assert "/site-packages/conformance/_fixtures/" in checked.stdout  # the wheel's copy, not the checkout's


@pytest.mark.parametrize("args", [[], ["--impl", "refimpl"], ["--set", "tf-keras-2.21.0_tensorflow-2.21.0_cpu"]],
                         ids=["default", "impl-refimpl", "keras2-set"])
def test_installed_verify_replays_the_shipped_sets_with_nothing_failing(installed, args):
    done = _run(installed, "rnn-conformance", "verify", "-q", *args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert " 0 failing" in done.stdout


def test_installed_verify_runs_an_adapter_file_on_a_set_directory_and_names_its_mistake(installed):
    bin_dir, work = installed
    set_dir = next((ROOT / "fixtures").glob("keras-3*"))
    shutil.copytree(set_dir, work / "a-set", dirs_exist_ok=True)
    for where in ("a-set", set_dir.name):
        done = _run(installed, "rnn-conformance", "verify", "--impl", "my_adapter.py:SwappedGRU", "--cases", "quick",
                    "--set", where, "-q")
        assert done.returncode == 1, done.stderr[-2000:]
        assert "likely cause: the kernel, recurrent_kernel and bias gate blocks are in the order (r, z, h)" in done.stdout


def test_installed_diff_compares_two_shipped_sets(installed):
    names = sorted(p.parent.name for p in (ROOT / "fixtures").glob("*/manifest.json"))
    done = _run(installed, "rnn-conformance", "diff", names[-1], names[-2])  # tf-keras 2 -> Keras 3
    assert done.returncode == 0 and "moved beyond tolerance" in done.stdout, done.stderr
    done = _run(installed, "rnn-conformance", "diff", names[0], names[1])  # Keras 0.2 -> 1.2.2: refimpl.legacy
    assert done.returncode == 0 and "masking: Keras 0.2 zeroes" in done.stdout, done.stderr
    assert "   0 cases  no known cause" in done.stdout, done.stdout


def test_installed_pytest_plugin_runs_the_suite(installed):
    done = _run(installed, "python", "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider",
                "-n", "2", "-q", env={"RNN_CONFORMANCE_IMPL": "refimpl", "RNN_CONFORMANCE_CASES": "quick"})
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(r"\d+ failed", summary), summary


def test_installed_cli_says_in_one_line_what_is_missing(installed):
    for args, message in [(["verify", "--set", "nope"], "the shipped sets are"),
                          (["verify", "--impl", "keras-jax"], "pip install 'keras-rnn-conformance[jax]'"),
                          (["verify", "--oracle", "keras"], "pip install 'keras-rnn-conformance[keras]'")]:
        done = _run(installed, "rnn-conformance", *args)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
