"""The README's snippets run as written, print what they say, and CI runs its test command."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
DOCS = ("README.md", "docs/history.md")  # documents whose Python snippets run here
DOC_SNIPPETS = [(name, i, code) for name in DOCS
                for i, code in enumerate(re.findall(r"```python\n(.*?)```", (ROOT / name).read_text(), re.DOTALL))]


@pytest.mark.parametrize("name, index, code", DOC_SNIPPETS, ids=[f"{n}:{i}" for n, i, _ in DOC_SNIPPETS])
def test_readme_python_snippet_runs_and_prints_what_its_comments_say(name, index, code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{name} snippet {index}", "exec"), {})
    printed = out.getvalue().splitlines()
    claimed = [m.group(1).split(":")[0].strip() for m in re.finditer(r"print\(.*\)\s+# (.*)", code)]
    assert printed == claimed


def test_readme_has_the_seed_examples_and_two_commands():
    assert len(SNIPPETS) >= 3
    commands = re.findall(r"```sh\n(.*?)\n```", README, re.DOTALL)
    assert len(commands) == 2 and "rnn-conformance verify" in commands[0]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = re.findall(r"```sh\n(.*?)\n```", README, re.DOTALL)[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
