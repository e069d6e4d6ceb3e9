"""`dnnbench summary`: the layers of a model and their parameters, like a Keras summary."""

from __future__ import annotations

from typing import Annotated

import typer

from dnnbench import choices
from dnnbench.cli.common import out_console, usage_error
from dnnbench.cli.options import MODEL

# input features and classes of the data sets (without loading them)
DATA_SHAPES = {"mnist": (784, 10), "fashion-mnist": (784, 10), "digits": (64, 10),
               "synthetic": (32, 10)}


def summary(
    widths: Annotated[str, typer.Option(
        metavar="W1,W2,...", rich_help_panel=MODEL,
        help="Hidden-layer widths.")] = "300,100",
    activation: Annotated[str, typer.Option(metavar="NAME", rich_help_panel=MODEL,
                                            help="Hidden activation.")] = "relu",
    norm: Annotated[str, typer.Option(
        metavar="NAME", rich_help_panel=MODEL,
        help=f"Normalization: {choices.listed(choices.NORMALIZATIONS)}.")] = "none",
    norm_position: Annotated[str, typer.Option(
        metavar="WHERE", rich_help_panel=MODEL,
        help="Normalization layer before or after the activation.")] = "before",
    norm_groups: Annotated[int, typer.Option(rich_help_panel=MODEL,
                                             help="Group norm: groups per layer.")] = 4,
    input_norm: Annotated[bool, typer.Option(
        rich_help_panel=MODEL, show_default=False,
        help="Batch norm on the inputs, as the first layer.")] = False,
    bn_logits: Annotated[bool, typer.Option(rich_help_panel=MODEL, show_default=False,
                                            help="Batch-normalize the logits too.")] = False,
    inputs: Annotated[int | None, typer.Option(
        rich_help_panel=MODEL, show_default=False,
        help="Input features (default: 784, MNIST; an experiment's data set with "
             "--experiment).")] = None,
    classes: Annotated[int, typer.Option(rich_help_panel=MODEL,
                                         help="Output classes.")] = 10,
    experiment: Annotated[str | None, typer.Option(
        metavar="NAME_OR_FILE", show_default=False,
        help="Summarize an arm of this experiment file instead of the model options.")] = None,
    arm: Annotated[str | None, typer.Option(
        metavar="ARM", show_default=False,
        help="With --experiment: the arm (as in its runs CSV, e.g. 'batch_size=8,norm=batch'; "
             "default: the first).")] = None,
) -> None:
    """Print the layers of a model, their output shapes and parameters (trainable, and
    non-trainable: BN's running mean and variance), like a Keras model summary.

    Example (the Keras model Flatten, BN, Dense 300, BN, Dense 100, BN, Dense 10):
    dnnbench summary --widths 300,100 --activation elu --norm batch --norm-position after
    --input-norm
    """
    from dnnbench import definition
    from dnnbench.models.mlp import build_model
    from dnnbench.models.summary import layer_rows, totals

    try:
        if experiment is not None:
            spec, n_in, title = _arm_spec(experiment, arm)
        else:
            settings = {"widths": _widths(widths), "activation": activation, "norm": norm,
                        "norm_position": norm_position, "norm_groups": norm_groups,
                        "input_norm": input_norm, "bn_logits": bn_logits}
            settings = {k: definition.check_setting(k, v, "option") for k, v in settings.items()}
            spec = definition.make_spec(settings, None, "summary")
            if bn_logits and norm != "batch":
                raise definition.ExperimentError("--bn-logits needs --norm batch")
            n_in, title = 784, "Model"
        if inputs is not None:
            n_in = inputs
        if n_in < 1 or classes < 2:
            raise definition.ExperimentError("--inputs must be >= 1 and --classes >= 2")
        if spec.model != "mlp":
            raise definition.ExperimentError(
                f"summary lists the layers of the built-in MLP; {arm or 'the arm'} uses the model "
                f"plug-in {spec.model} (Flax's Module.tabulate lists its layers)")
        rows = layer_rows(build_model(spec, classes), n_in)
    except (definition.ExperimentError, ValueError) as e:
        usage_error(str(e).removeprefix("option: ").removeprefix("summary: "))
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for c, justify in (("layer", "left"), ("type", "left"), ("output shape", "left"),
                       ("params", "right"), ("trainable", "right"),
                       ("non-trainable", "right")):
        t.add_column(c, justify=justify)
    for r in rows:
        t.add_row(r.name, r.kind, f"(None, {r.units})", f"{r.params:,}", f"{r.trainable:,}",
                  f"{r.non_trainable:,}")
    total = totals(rows)
    t.add_section()
    t.add_row("total", "", "", f"{total['params']:,}", f"{total['trainable']:,}",
              f"{total['non_trainable']:,}")
    out_console().print(t)


def _widths(text: str) -> list[int]:
    from dnnbench.definition import ExperimentError

    try:
        return [int(w) for w in text.split(",")]
    except ValueError:
        raise ExperimentError(f"--widths must be integers separated by commas, got {text!r}"
                              ) from None


def _arm_spec(experiment: str, arm: str | None):
    from dnnbench import definition

    exp = definition.load(experiment)
    arms = definition.expand(exp)
    chosen = arms[0] if arm is None else next((a for a in arms if a.name == arm), None)
    if chosen is None:
        raise definition.ExperimentError(f"{exp.name}: no arm {arm!r}; arms: "
                                    f"{', '.join(a.name for a in arms[:10])}"
                                    f"{', ...' if len(arms) > 10 else ''}")
    spec = definition.make_spec(chosen.settings, None, f"{exp.source} arm {chosen.name}")
    return spec, DATA_SHAPES[exp.dataset][0], f"{exp.name}: {chosen.name}"


def register(app: typer.Typer) -> None:
    app.command("summary")(summary)
