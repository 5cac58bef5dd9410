"""The CLI on bad use: one line on stderr that says what to do, exit code 2, never a traceback."""

from __future__ import annotations

import shutil
import sys

import pytest

from conformance import cli
from conformance.oracle.fixture import CANONICAL, find_set, shipped_sets

BROKEN = "tests/adapters/broken.py"


def _main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_keras(monkeypatch):
    """Keras, TensorFlow, JAX and torch unimportable, whatever this environment has."""
    for name in ("keras", "tensorflow", "tf_keras", "jax", "torch"):
        monkeypatch.setitem(sys.modules, name, None)


def _one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnn-conformance: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("impl, extra", [("keras-jax", "jax"), ("keras-torch", "torch"),
                                         ("keras-tensorflow", "keras")])
def test_a_keras_backed_adapter_without_keras_names_the_extra_to_install(capsys, no_keras, impl, extra):
    _one_line(*_main(capsys, "verify", "--impl", impl)[::2], f"pip install 'keras-rnn-conformance[{extra}]'")


def test_the_live_oracle_without_keras_names_the_extra(capsys, no_keras):
    _one_line(*_main(capsys, "verify", "--oracle", "keras")[::2], "pip install 'keras-rnn-conformance[keras]'")


def test_diff_installed_without_keras_names_the_extra(capsys, no_keras):
    _one_line(*_main(capsys, "diff", CANONICAL, "--installed")[::2], "pip install 'keras-rnn-conformance[keras]'")


def test_an_adapter_whose_supports_answers_false_is_one_line(capsys, tmp_path):
    path = tmp_path / "vague.py"
    path.write_text("class Vague:\n    def run(self, *a, **k):\n        return []\n"
                    "    def supports(self, config):\n        return False\n")
    _one_line(*_main(capsys, "verify", "-q", "--impl", f"{path}:Vague")[::2], "supports(config) returned False")


def test_unknown_layers_list_the_valid_names(capsys):
    _one_line(*_main(capsys, "verify", "--layers", "NOPE")[::2], "--layers NOPE", "SimpleRNN", "Bidirectional(GRU)")


@pytest.mark.parametrize("args", [["diff", "nope"], ["diff", "nope", CANONICAL], ["diff", CANONICAL, "nope"],
                                  ["verify", "--set", "nope"], ["fixtures", "check", "nope"]])
def test_an_unknown_set_lists_the_shipped_ones_and_says_how_to_point_at_another(capsys, args):
    _one_line(*_main(capsys, *args)[::2], "'nope'", *(s.name for s in shipped_sets()), "path of a set's directory")


@pytest.mark.parametrize("args, needle", [
    (["verify", "--impl", "nonsense"], "impl='nonsense', expected one of"),
    (["verify", "-n", "zero"], "-n='zero'"),
    (["verify", "--bogus"], "unrecognized arguments: --bogus"),
    (["verify", "--dtype", "int8"], "--dtype int8: expected one of"),
    (["verify", "--case", "LSTM(units=99)"], "unknown case id"),
    (["verify", "--oracle", "keras", "--set", CANONICAL], "--set chooses a fixture set"),
    (["diff", CANONICAL], "give A and B, or A --installed"),
    (["diff", "keras-1.2.2_theano-1.0.5_cpu", "keras-0.2.0_theano-1.0.5_cpu"], "goes forward in time"),
    (["generate", "--historical", "0.2.0"], "--historical needs --python PY"),
    (["generate", "--historical", "0.2.0", "--python", "/no/such/python"], "--python='/no/such/python'"),
    (["generate", "--historical", "0.3"], "invalid choice: '0.3'"),
    (["generate", "--python", "/usr/bin/python3"], "--python goes with --historical"),
    (["generate", "--historical", "1.2.2", "--python", sys.executable, "--layers", "JZS1"], "--layers JZS1"),
    ([], "the following arguments are required"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_other_mistakes_are_one_line(capsys, args, needle):
    _one_line(*_main(capsys, *args)[::2], needle)


def test_a_bad_deviations_file_is_one_line(capsys, tmp_path):
    path = tmp_path / "dev.json"
    path.write_text("[]")
    _one_line(*_main(capsys, "verify", "--deviations", str(path))[::2], "deviations file")


def test_quick_cases_come_from_the_set_given_as_a_directory(capsys, tmp_path):
    copy = tmp_path / "myset"
    shutil.copytree(find_set(CANONICAL), copy)
    code, out, err = _main(capsys, "verify", "-q", "--cases", "quick", "--set", str(copy), "--impl", f"{BROKEN}:SwappedGRU",
                           "--layers", "GRU")
    assert code == 1 and "oracle: fixture set myset" in out, err
    assert f"--set {copy}" in out  # the rerun line selects the same set again


def test_failures_show_a_compact_config_and_verbose_the_full_one(capsys):
    args = ["verify", "-q", "--impl", f"{BROKEN}:SwappedGRU", "--case", "GRU(units=3)-float64-B3T5F4"]
    code, out, _ = _main(capsys, *args)
    assert code == 1 and "  config: GRU(units=3, dtype='float64')\n" in out and "full config" not in out
    code, out, _ = _main(capsys, *args, "-v")
    assert '  full config: {"build_config": {"input_shape": [3, 5, 4]}, "class_name": "GRU"' in out


def test_table_columns_fit_their_widest_cell(capsys):
    from conformance.report import text_table

    lines = text_table(["layer", "seq"], [["GRU", "490/153"], ["LSTM", "80/97"]])
    assert lines == ["layer     seq", "-------------", "GRU   490/153", "LSTM    80/97"]
