"""What a new user meets on the command line: bad input refused up front in one line (exit 2),
help that lists the allowed names, --quick that yields to explicit options, the data-set
fallback recorded, progress readable in a log. No test here trains a network: the commands
stop where the experiment would start (``run_experiment`` replaced) or before."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from dnnbench import choices, limits
from dnnbench.cli import app, unwrap

runner = CliRunner()
BOX = set("╭╮╰╯│─")


def refused(args: list[str], *expected: str):
    """Run the app with ``args``: exit 2, one 'Error: ...' line on stderr holding every text of
    ``expected``, nothing on stdout, no traceback, no box."""
    res = runner.invoke(app, args)
    assert res.exit_code == 2, (args, res.output)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), (args, res.stderr)
    assert res.stdout == "", (args, res.stdout)
    assert "Traceback" not in res.output and not BOX & set(res.output), res.output
    for text in expected:
        assert text in lines[0], (args, lines[0])
    return lines[0]


# ------------------------------------------------------------------------ limits (item 1)

LIMIT_CASES = [
    (["depth-sweep", "--depths", "1-100000000"], "--depths", "limit of 1,000"),
    (["depth-sweep", "--depths", "5,2000"], "--depths", "limit of 1,000"),
    (["depth-sweep", "--max-steps", "3000000000"], "--max-steps", "2,147,483,647", "int32"),
    (["depth-sweep", "--width", "100000"], "--width", "65,536"),
    (["depth-sweep", "--widths", "500,70000"], "--widths", "65,536"),
    (["depth-sweep", "--seeds", "1001"], "--seeds", "limit of 1,000"),
    (["depth-sweep", "--eval-every", "99999999999"], "--eval-every", "int32"),
    (["depth-sweep", "--batch-size", str(10**20)], "--batch-size", "int32"),
    (["depth-sweep", "--learning-rate", "1e39"], "--learning-rate", "float32"),
    (["depth-sweep", "--width", "60000", "--depths", "1-7", "--seeds", "1000",
      "--batch-size", "100"], "depth 7 with 1000 seeds needs about", "GiB", "memory"),
    (["optimizers", "--epochs", "100000000"], "--epochs", "int32"),
    (["optimizers", "--epochs", "100000", "--seeds", "1000"], "GiB", "memory"),
    (["optimizers", "--tune", "--tune-grid", "1e-4:1e-1:1000000000"], "--tune-grid",
     "limit of 1,000"),
    (["optimizers", "--learning-rate", "adam=1e-50"], "--learning-rate adam", "float32"),
    (["transfer", "--epochs-a", "10000000000"], "--epochs-a", "int32"),
    (["transfer", "--epochs-a", "100000000"], "--epochs-a", "model A's steps", "int32"),
    (["transfer", "--freeze-epochs", "3000000000"], "--freeze-epochs", "int32"),
    (["transfer", "--seeds", "5000"], "--seeds", "limit of 1,000"),
]


@pytest.mark.parametrize("case", LIMIT_CASES, ids=lambda c: " ".join(c[0]))
def test_numbers_past_a_limit_are_refused_before_any_work(case, tmp_path):
    args, *expected = case
    refused([*args, "--dataset", "digits", "--out", str(tmp_path)], *expected)
    assert not any(tmp_path.iterdir())  # nothing written


def test_limit_functions_take_plain_values():
    limits.check("depth", 1000, "--depths")
    with pytest.raises(limits.LimitError, match=r"--depths: 1,001 is above the limit of 1,000"):
        limits.check("depth", 1001, "--depths")
    with pytest.raises(limits.LimitError, match="int32"):
        limits.check("steps", 2**31, "--max-steps")
    limits.check("seed", 2**32 - 1, "--seed-offset")  # a seed offset plus the seeds, e.g.
    with pytest.raises(limits.LimitError, match="32-bit"):
        limits.check("seed", 2**32, "--seed-offset")
    limits.check_float32(1e-3, "--lr")
    with pytest.raises(limits.LimitError, match="float32"):
        limits.check_float32(1e-45, "--lr")
    small = limits.run_bytes(lanes=5, layer_sizes=(784, 100, 10), batch_size=32, steps=1000,
                             n_evals=10)
    assert limits.run_bytes(lanes=10, layer_sizes=(784, 100, 10), batch_size=32, steps=1000,
                            n_evals=10) == 2 * small
    limits.check_memory(small, "a run", available=2 * small)
    with pytest.raises(limits.LimitError, match="a run needs about .* GiB"):
        limits.check_memory(small, "a run", available=small - 1)


# ------------------------------------------------------------- list options (item 2)

@pytest.mark.parametrize("args,expected", [
    (["depth-sweep", "--depths", "1,,3"], "empty item"),
    (["depth-sweep", "--depths", "1,"], "empty item"),
    (["depth-sweep", "--depths", "1,1"], "1 is given more than once"),
    (["depth-sweep", "--depths", "1-3,2"], "2 is given more than once"),
    (["depth-sweep", "--depths", "3-1"], "is empty"),
    (["depth-sweep", "--widths", "500,,300"], "empty item"),
    (["depth-sweep", "--activation", "relu", "--activation", "relu"], "more than once"),
    (["optimizers", "--optimizer", "adam", "--optimizer", "adam"], "adam is given more than"),
    (["optimizers", "--learning-rate", "adam=0.1", "--learning-rate", "adam=0.2"], "adam=... is given more than"),
    (["optimizers", "--tune", "--tune-grid", "1e-3,,1e-2"], "empty item"),
    (["optimizers", "--tune", "--tune-grid", "1e-3,1e-3"], "more than once"),
])
def test_empty_and_repeated_list_items_are_refused(args, expected, tmp_path):
    refused([*args, "--dataset", "digits", "--out", str(tmp_path)], expected)


def test_repeated_widths_are_allowed():  # a width per layer: 100,100,100 is a real net
    from dnnbench.cli.common import parse_int_list

    assert parse_int_list("100,100", "--widths", limit="width", unique=False) == (100, 100)
    assert parse_int_list("1-3,5", "--depths", limit="depth") == (1, 2, 3, 5)


# ------------------------------------------------------- Typer's own errors (item 3)

@pytest.mark.parametrize("args,expected", [
    (["depth-sweep", "--seeds", "abc"], "Invalid value for '--seeds'"),
    (["optimizers", "--seeds", "abc"], "Invalid value for '--seeds'"),
    (["transfer", "--seeds", "1.5"], "Invalid value for '--seeds'"),
    (["depth-sweep", "--learning-rate", "fast"], "Invalid value for '--learning-rate'"),
    (["depth-sweep", "--bogus"], "No such option: --bogus"),
    (["depth-sweep", "--seeds"], "--seeds"),
    (["bogus"], "No such command 'bogus'"),
    (["data", "info"], "Missing argument 'NAME'"),
])
def test_typer_usage_errors_are_one_line(args, expected):
    refused(args, expected)


def test_a_usage_error_says_where_help_is():
    assert refused(["depth-sweep", "--seeds", "abc"]).endswith("(see: dnnbench depth-sweep -h)")


# ---------------------------------------------------------------------- help (item 4)

def test_dash_h_and_version():
    long, short = runner.invoke(app, ["depth-sweep", "--help"]), runner.invoke(app, ["depth-sweep",
                                                                                     "-h"])
    assert long.exit_code == short.exit_code == 0 and long.stdout == short.stdout
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == "dnnbench 0.1.0"


@pytest.mark.parametrize("command", [[], ["data"], ["data", "info"], ["data", "verify"],
                                     ["depth-sweep"], ["optimizers"], ["transfer"], ["claims"],
                                     ["check"], ["report"]])
def test_help_has_no_type_placeholders(command):
    res = runner.invoke(app, [*command, "-h"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    for placeholder in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list"):
        assert placeholder not in res.stdout, (command, placeholder)


def help_text(command: str) -> str:
    res = runner.invoke(app, [command, "-h"], env={"COLUMNS": "250"})
    assert res.exit_code == 0
    return " ".join(res.stdout.split())


def test_help_lists_the_allowed_names_in_panels():
    text = help_text("depth-sweep")
    for name in (*choices.ACTIVATIONS, *choices.INITIALIZERS, *choices.OPTIMIZERS,
                 *choices.DATASETS, *choices.BN_POSITIONS):
        assert name in text, name
    for panel in ("Model", "Training", "Data", "Output"):
        assert f"╭─ {panel} ─" in text, panel
    for command in ("optimizers", "transfer"):
        text = help_text(command)
        assert all(name in text for name in choices.DATASETS), command
        assert all(f"╭─ {p} ─" in text for p in ("Training", "Data", "Output")), command
    assert all(name in help_text("optimizers") for name in choices.OPTIMIZERS)


def test_choices_name_exactly_the_tables():
    from dnnbench import registry
    from dnnbench.data import DATASETS

    assert choices.ACTIVATIONS == tuple(registry.ACTIVATIONS)
    assert choices.INITIALIZERS == tuple(registry.INITIALIZERS)
    assert choices.OPTIMIZERS == tuple(registry.OPTIMIZERS)
    assert choices.SCHEDULES == tuple(registry.SCHEDULES)
    assert choices.DROPOUTS == tuple(registry.DROPOUTS)
    assert choices.DATASETS == tuple(DATASETS)


def test_help_imports_no_jax():
    code = ("import sys; import dnnbench.cli; "
            "print(sorted(m for m in ('jax', 'optax', 'flax', 'pandas', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_help_paragraphs_are_wrapped_once():
    doc = """First
    line.

    Second
    paragraph.
    """
    assert unwrap(doc) == "First line.\n\nSecond paragraph."
    command = typer.main.get_command(app)
    for name in ("depth-sweep", "optimizers", "transfer"):
        for paragraph in command.commands[name].help.split("\n\n"):
            assert "\n" not in paragraph, (name, paragraph)


# ---------------------------------------------------------------- progress (item 5)

def test_progress_shows_an_eta_and_no_source_locations():
    from dnnbench.report.console import RichProgress, plural

    buf = io.StringIO()
    progress = RichProgress(Console(file=buf, width=100, soft_wrap=True), title="depth-sweep")
    progress.start(total=2, done=0)
    for label in ("depth=1 bn=off", "depth=1 bn=on"):
        progress.unit_started(label)
        progress.unit_finished(label, cached=False)
    progress.stop()
    text = buf.getvalue()
    assert "depth=1 bn=on done in" in text and "ETA" in text
    assert ".py:" not in text
    assert (plural(1, "seed"), plural(3, "seed")) == ("1 seed", "3 seeds")


def test_warnings_are_not_wrapped_when_stderr_is_piped(monkeypatch):
    from dnnbench.cli.common import warn

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    message = " ".join(f"word{i}" for i in range(60))  # ~400 characters
    warn(message)
    assert buf.getvalue().splitlines() == [f"Warning: {message}"]


# ------------------------------------------ --quick yields to explicit options (item 6)

@pytest.fixture
def stop_before_training(monkeypatch):
    """Replace run_experiment in the three commands: record its meta, exit 0."""
    seen = []

    def fake(experiment, units, data, out, **kwargs):
        seen.append((data, kwargs["meta"]))
        raise typer.Exit(0)

    for module in ("run", "optimizers", "transfer"):  # presets run through cli.run
        monkeypatch.setattr(f"dnnbench.cli.{module}.run_experiment", fake, raising=False)
    return seen


def n_seeds(config: dict) -> int:
    seeds = config["seeds"]
    return seeds if isinstance(seeds, int) else len(seeds)


@pytest.mark.parametrize("command,quick_seeds", [("depth-sweep", 2), ("optimizers", 2),
                                                 ("transfer", 3)])
def test_explicit_seeds_win_over_quick(command, quick_seeds, stop_before_training, tmp_path):
    for extra, seeds in (([], quick_seeds), (["--seeds", "4"], 4)):
        res = runner.invoke(app, [command, "--quick", "--dataset", "synthetic", *extra,
                                  "--out", str(tmp_path)])
        assert res.exit_code == 0, res.output
        assert n_seeds(stop_before_training[-1][1]["config"]) == seeds


def test_explicit_depths_and_steps_win_over_quick(stop_before_training, tmp_path):
    args = ["depth-sweep", "--quick", "--dataset", "synthetic", "--out", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    config = stop_before_training[-1][1]["config"]
    assert (config["factors"]["depth"], config["base"]["max_steps"]) == ((1, 2), 100)
    assert runner.invoke(app, [*args, "--depths", "3,5", "--max-steps", "200"]).exit_code == 0
    config = stop_before_training[-1][1]["config"]
    assert (config["factors"]["depth"], config["base"]["max_steps"]) == ((3, 5), 200)


def test_too_few_seeds_is_said():
    from dnnbench.stats import TOO_FEW_SEEDS, paired_censored_comparison, verdict_from_interval

    assert verdict_from_interval(0.4, 0.7, better="lower", null=1.0, n=3) == TOO_FEW_SEEDS
    assert verdict_from_interval(0.4, 0.7, better="lower", null=1.0, n=5) == "better"
    three = paired_censored_comparison([10.0] * 3, [True] * 3, [100.0] * 3,
                                       [20.0] * 3, [True] * 3, [100.0] * 3)
    assert three.verdict == TOO_FEW_SEEDS == "too few seeds for a verdict"


# ------------------------------------------------------- data-set fallback (item 7)

def test_fashion_mnist_falls_back_to_mnist_and_says_so(fake_mnist, monkeypatch,
                                                       stop_before_training, tmp_path):
    from conftest import make_mnist_files

    from dnnbench.data import mnist

    root, _ = fake_mnist
    monkeypatch.setitem(mnist.SHA256, "mnist", make_mnist_files(root / "mnist", n_train=5100))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline)
    res = runner.invoke(app, ["optimizers", "--data-dir", str(root), "--batch-size", "8",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "Continuing on 'mnist' instead" in res.stderr and "fashion-mnist" in res.stderr
    data, _ = stop_before_training[-1]
    assert (data.name, data.requested) == ("mnist", "fashion-mnist")
    assert "fashion-mnist" in data.fallback_reason and "\n" not in data.fallback_reason


def test_meta_records_the_requested_data_set(tmp_path):
    import dataclasses

    import pandas as pd

    from dnnbench.data import load_dataset
    from dnnbench.results.io import write_results

    ds = dataclasses.replace(load_dataset("digits"), requested="fashion-mnist",
                             fallback_reason="data set 'fashion-mnist' is not available")
    paths = write_results(tmp_path, "toy", ds, pd.DataFrame({"a": [1]}),
                          pd.DataFrame({"b": [2]}), {})
    meta = json.loads(paths["meta"].read_text())["dataset"]
    assert (meta["name"], meta["requested"]) == ("digits", "fashion-mnist")
    assert meta["fallback_reason"].startswith("data set 'fashion-mnist'")
    paths = write_results(tmp_path, "toy2", load_dataset("digits"), pd.DataFrame({"a": [1]}),
                          pd.DataFrame({"b": [2]}), {})
    meta = json.loads(paths["meta"].read_text())["dataset"]
    assert (meta["requested"], meta["fallback_reason"]) == ("digits", None)


def test_a_start_without_bytecode_says_how_to_compile_it_once(monkeypatch, tmp_path):
    import importlib.util
    import sys

    from dnnbench import cli

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert cli.bytecode_hint() is None  # bytecode is written: nothing to say
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert cli.bytecode_hint() is None  # JAX's is compiled already (this environment)
    monkeypatch.setattr(importlib.util, "cache_from_source", lambda p: str(tmp_path / "x.pyc"))
    hint = cli.bytecode_hint()
    assert "uv sync --compile-bytecode" in hint and "\n" not in hint


@pytest.mark.parametrize(("args", "new"), [
    (["depth-sweep", "--lr", "0"], "--learning-rate"),
    (["depth-sweep", "--bn-position", "middle"], "--norm-position"),
    (["optimizers", "--lr", "adam=abc"], "--learning-rate"),
    (["transfer", "--lr", "-1"], "--learning-rate"),
])
def test_old_option_spellings_work_with_a_note(args, new):
    """Preset options are named as the settings they set; the old spellings still reach the
    same checks, after one line that names the new one."""
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    note, error = r.output.strip().splitlines()
    assert note.startswith(f"note: {args[1]} is now {new}") and error.startswith("Error:")
    both = CliRunner().invoke(app, [*args[:3], new, args[2]])
    assert both.exit_code == 2 and f"give {new} only" in both.output
