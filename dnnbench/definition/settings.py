"""The run settings an experiment file may set: their types and allowed values, checked.

Every setting is one :class:`Setting` of :data:`SETTINGS` (the transfer protocol's own
settings are :data:`PROTOCOL_SETTINGS`); :func:`check_setting` checks a value against it and
returns it in its canonical type. A bad value is an :class:`ExperimentError` of one line that
names the key, the file and what is allowed. Nothing here imports JAX.
"""

from __future__ import annotations

import dataclasses
import math
import re

from dnnbench import choices


class ExperimentError(ValueError):
    """A bad experiment file or override; the message is one line naming the key and file."""


def fail(where: str, message: str):
    raise ExperimentError(f"{where}: {message}")


def check_type(value, kind, where: str, key: str):
    if kind is dict and not isinstance(value, dict):
        fail(where, f"{key} must be a table, got {value!r}")
    if kind is str and not isinstance(value, str):
        fail(where, f"{key} must be a string, got {value!r}")
    return value


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------------------ the settings

@dataclasses.dataclass(frozen=True)
class Setting:
    """A run setting's type and allowed values: kind is int, float, bool, str, widths; for
    names, ``names`` (a tuple, or a registry attribute name) lists the allowed values."""

    kind: str
    about: str
    names: tuple[str, ...] | None = None
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # exclusive for floats with ``open_max``
    open_max: bool = False
    plugins: bool = False  # a name may also be package.module:factory


SETTINGS: dict[str, Setting] = {
    # model
    "model": Setting("str", "the model: mlp (the MLP the settings below describe) or a plug-in "
                     "package.module:factory whose factory(n_outputs) returns a Flax module "
                     "called as module(x, train=...) on flat features", ("mlp",),
                     plugins=True),
    "widths": Setting("widths", "hidden-layer widths, e.g. [300, 100]"),
    "depth": Setting("int", "hidden layers: the first `depth` of widths (or `width` each)",
                     minimum=1, maximum=1000),
    "width": Setting("int", "units of every hidden layer (with depth)", minimum=1,
                     maximum=65536),
    "activation": Setting("str", "hidden activation", choices.ACTIVATIONS, plugins=True),
    "init": Setting("str", "kernel initializer of the hidden layers ('default': He for the "
                    "ReLU family, Glorot for sigmoid/tanh, LeCun for SELU)",
                    ("default", *choices.INITIALIZERS), plugins=True),
    "init_scale": Setting("float", "variance scale of the hidden initializer: variance = "
                          "init_scale / n, n the initializer's fan (fan_in for He and LeCun), "
                          "its distribution kept; 0 = the initializer's own (He 2, LeCun and "
                          "Glorot 1) (a lane value)", minimum=0),
    "head_init": Setting("str", "initializer of the output layer", choices.INITIALIZERS,
                         plugins=True),
    "norm": Setting("str", "normalization of the hidden layers", choices.NORMALIZATIONS),
    "norm_position": Setting("str", "normalization layer before or after the activation",
                             choices.BN_POSITIONS),
    "norm_groups": Setting("int", "group norm: groups of units per hidden layer (divides "
                           "every width)", minimum=1, maximum=65536),
    "input_norm": Setting("bool", "batch norm on the inputs, as the first layer"),
    "inputs": Setting("str", "input features: unit (pixels / 255, as loaded), raw (pixel "
                      "values in [0, 255]) or standardized (train split's mean and std)",
                      choices.INPUTS),
    "bn_eval": Setting("str", "BN statistics at evaluation: running averages, the training "
                       "split's (recomputed at each evaluation), or each evaluated batch's",
                       choices.BN_EVAL),
    "bn_eval_batch": Setting("int", "bn_eval batch: examples per evaluated batch (0 = the "
                             "training batch size)", minimum=0, maximum=2**31 - 1),
    "bn_momentum": Setting("float", "BN running-average momentum (a lane value)", minimum=0,
                           maximum=1, open_max=True),
    "bn_epsilon": Setting("float", "epsilon of the normalization layers (a lane value)",
                          minimum=0),
    "bn_logits": Setting("bool", "batch-normalize the logits too (BN arms)"),
    "dropout": Setting("float", "dropout rate (a lane value), after every hidden layer or "
                       "before every dense layer (dropout_placement)", minimum=0, maximum=1,
                       open_max=True),
    "dropout_placement": Setting("str", "dropout after every hidden layer, or before every "
                                 "dense layer (the inputs too, at the same rate)",
                                 choices.DROPOUT_PLACEMENTS),
    "dropout_kind": Setting("str", "standard (inverted) dropout, or alpha dropout (SELU)",
                            choices.DROPOUTS),
    "leaky_slope": Setting("float", "leaky_relu's slope for negative inputs (a lane value)",
                           minimum=0),
    "standardize": Setting("bool", "standardize the inputs with the training split's "
                           "per-feature mean and std"),
    "loss": Setting("str", "the training loss: softmax (cross-entropy over the classes), "
                    "sigmoid (one logistic unit, 2 classes), mse (quadratic cost of the "
                    "softmax probabilities against one-hot targets) or reconstruction (an "
                    "autoencoder's: squared error of one output per input against the input)",
                    choices.LOSSES),
    # optimization
    "optimizer": Setting("str", "optimizer", choices.OPTIMIZERS, plugins=True),
    "learning_rate": Setting("float", "learning rate (a lane value)", minimum=0),
    "schedule": Setting("str", "learning-rate schedule", choices.SCHEDULES, plugins=True),
    "clip": Setting("str", "gradient clipping: none, value (each component into [-t, t]), "
                    "norm (each tensor by its own norm, Keras clipnorm) or global_norm (all "
                    "tensors by one factor); t = clip_norm", choices.CLIPPINGS),
    "clip_norm": Setting("float", "gradient clipping threshold t of the clip kind, 0 = off (a "
                         "lane value)", minimum=0),
    "l1": Setting("float", "l1 penalty coefficient on the kernels (a lane value)", minimum=0),
    "l2": Setting("float", "l2 penalty coefficient on the kernels (a lane value)", minimum=0),
    "max_norm": Setting("float", "max-norm: after every step each unit's incoming weights "
                        "rescaled to norm <= this, 0 = off (a lane value)", minimum=0),
    "max_norm_params": Setting("str", "the kernels that max_norm rescales: all, or the hidden "
                               "layers' only (the output layer's left free)",
                               choices.MAX_NORM_PARAMS),
    "decay_params": Setting("str", "what decoupled weight decay (weight_decay) shrinks: all "
                            "parameters, or the kernels only (as the l1/l2 penalties)",
                            choices.DECAY_PARAMS),
    "batch_size": Setting("int", "mini-batch size", minimum=1),
    # budget and evaluation
    "max_steps": Setting("int", "training steps of the budget", minimum=1, maximum=2**31 - 1),
    "epochs": Setting("int", "the budget in epochs (passes over the training split)",
                      minimum=1, maximum=100000),
    "eval_every": Setting("int", "steps between evaluations (or \"epoch\")", minimum=1,
                          maximum=2**31 - 1),
    "eval_split": Setting("str", "the split evaluated during training, that targets, tuning, "
                          "early stopping and best-of choices read: val (the default) or test "
                          "(the test split is evaluated once more at the end either way)",
                          ("val", "test")),
    "target": Setting("float", "accuracy on the eval split that counts as reached; 0 = none",
                      minimum=0, maximum=1),
    "stop_at_target": Setting("bool", "stop a seed once it reaches the target"),
    "divergence_factor": Setting("float", "a seed diverges when its training loss is not "
                                 "finite or its mean over an evaluation period exceeds this "
                                 "multiple of its initial loss (the first step's, before any "
                                 "update); 0: non-finite only",
                                 minimum=0),
    "early_stopping": Setting("int", "early stopping's patience: stop after this many "
                              "evaluations without a lower validation loss and restore the "
                              "best parameters; 0 = off", minimum=0, maximum=2**31 - 1),
    "eval_train": Setting("bool", "evaluate the training split too (without dropout or "
                          "penalty): training accuracy and generalization gap"),
    "mc_samples": Setting("int", "MC dropout: stochastic passes of the final test evaluation "
                          "(e.g. 100); 0 = off", minimum=0, maximum=10000),
    "train_size": Setting("int", "use the first n training examples (0 = all)", minimum=0),
    "sparsity_threshold": Setting("float", "measure kernel_sparsity: the fraction of the final "
                                  "kernels' weights with |w| below this (e.g. 0.001); 0 = off",
                                  minimum=0),
    "diagnostics": Setting("bool", "per-layer diagnostics at step 0 and every evaluation "
                           "(written to <name>-<dataset>-layers.csv)"),
    # files with [tune]
    "lr_source": Setting("str", "a factor of files with [tune]: default (the arm's own "
                         "settings) or tuned (the best point of the [tune] grid)",
                         ("default", "tuned")),
}


# settings of the built-in MLP: a model plug-in (setting model) is refused them
MLP_SETTINGS = ("widths", "depth", "width", "activation", "init", "init_scale", "head_init",
                "norm", "norm_position", "norm_groups", "input_norm", "bn_eval", "bn_eval_batch",
                "bn_momentum", "bn_epsilon", "bn_logits", "dropout", "dropout_placement",
                "dropout_kind", "leaky_slope", "max_norm", "diagnostics", "mc_samples")


# the divergence rule of every arm an experiment defines (a bare RunSpec has it off)
DIVERGENCE_FACTOR = 10.0


# settings that are not RunSpec fields: resolved into the spec by ``make_spec``
DERIVED = ("depth", "width", "epochs", "train_size")


STRUCTURE_ONLY = ("train_size",)  # shapes the data rather than the spec


COLUMN_ORDER = ("model", "depth", "widths", "activation", "init", "init_scale", "head_init",
                "norm", "norm_position", "norm_groups", "input_norm", "inputs", "bn_momentum",
                "bn_epsilon", "bn_logits", "bn_eval", "bn_eval_batch", "leaky_slope", "dropout",
                "dropout_placement", "dropout_kind", "standardize", "loss", "optimizer",
                "learning_rate", "schedule", "clip", "clip_norm", "l1", "l2", "max_norm",
                "max_norm_params", "decay_params", "batch_size", "epochs", "max_steps", "eval_every", "eval_split",
                "target", "stop_at_target", "divergence_factor", "early_stopping", "eval_train",
                "mc_samples",
                "train_size", "diagnostics")


METRICS = ("steps_to_target", "time_to_target_s", "final_eval_accuracy", "best_eval_accuracy",
           "final_eval_loss", "final_train_loss", "final_test_accuracy", "final_test_loss",
           # eval_train
           "final_train_accuracy", "final_train_loss_clean", "generalization_gap",
           # early_stopping
           "restored_step",
           # mc_samples
           "det_test_nll", "det_test_ece", "mc_test_accuracy", "mc_test_nll", "mc_test_ece",
           "mc_std_correct", "mc_std_wrong",
           # sparsity_threshold
           "kernel_sparsity",
           "divergence_rate")  # the fraction of seeds that diverged (RunSpec.divergence_factor)


DEFAULT_SHOW = ("steps_to_target", "final_eval_accuracy", "final_test_accuracy")


# metrics where less is better (the best of a claim's `against` levels)
LOWER_IS_BETTER = ("steps_to_target", "time_to_target_s", "generalization_gap",
                   "restored_step", "mc_std_correct", "divergence_rate")


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith(("_loss", "_nll", "_ece", "_clean"))


# [tune]: the factor that tells default and tuned arms apart, and the metrics that choose
TUNE_FACTOR = "lr_source"


TUNE_LEVELS = ("default", "tuned")


TUNE_BY = ("final_eval_accuracy", "best_eval_accuracy", "final_eval_loss")


# the transfer protocol's own settings (dnnbench.definition.protocols), checked like the others
STAGES = ("A", "B", "B-on-A", "B-tuned")
PROTOCOL_SETTINGS: dict[str, Setting] = {
    "stage": Setting("str", "transfer stage: A, B from scratch, B on A's layers, or B from "
                     "scratch at its validation-tuned learning rate (B-tuned)", STAGES),
    "pair": Setting("pair", "task B as POSvNEG class labels (e.g. 3v5), or 'default' "
                    "(the data set's documented pair)"),
    "epochs_a": Setting("int", "training epochs of model A", minimum=1, maximum=100000),
    "freeze_epochs": Setting("int", "epochs of B-on-A with the reused layers frozen",
                             minimum=0, maximum=100000),
    "unfreeze_epochs": Setting("int", "epochs of B-on-A with every layer trainable (B "
                               "trains freeze + unfreeze epochs)", minimum=0,
                               maximum=100000),
    "unfreeze_lr": Setting("float", "learning rate of the reused layers after unfreezing "
                           "(default: learning_rate)", minimum=0),
    "reuse_layers": Setting("int", "hidden layers of A reused by B-on-A (default: all)",
                            minimum=0, maximum=1000),
    "pretext": Setting("str", "what model A learns: classes (softmax over the classes outside "
                       "task B's pair; the default), autoencoder (reconstructs every "
                       "training image, labels unused: unlabeled pretraining) or rotation "
                       "(which of four quarter turns each training image was given: an "
                       "auxiliary task whose labels come from the images)", choices.PRETEXTS),
    "b_rate_min": Setting("float", "the bottom of the grid that a tuned B arm's rate is "
                          "chosen from (0.0001, 0.0003, 0.001, ... 3 from it on; default "
                          "0.001)", minimum=0.0001, maximum=3.0),
    "b_rate_max": Setting("float", "the top of the grid that a tuned B arm's rate is chosen "
                          "from (up to it; default 0.3)", minimum=0.0001, maximum=3.0),
    "b_rate": Setting("str", "learning rate of the B arms (B, B-on-A; unfreeze_lr defaults to "
                      "it): learning_rate (the file's), or tuned: per class pair and "
                      "train_size, the rate of B-tuned's grid at which B from scratch ends "
                      "with the best median validation accuracy; or tuned-per-arm: every B "
                      "arm (B, each B-on-A variant) at the rate of that grid at which it "
                      "ends with its own best median validation accuracy",
                      ("learning_rate", "tuned", "tuned-per-arm")),
}


def check_setting(key: str, value, where: str):
    """``value`` checked against the setting ``key`` (or an optimizer coefficient: any finite
    non-negative number, checked against the optimizer when the arm is built)."""
    setting = SETTINGS.get(key) or PROTOCOL_SETTINGS.get(key)
    if setting is None:
        if is_number(value) and re.fullmatch(r"[a-z][a-z0-9_]*", key):
            if not math.isfinite(value) or value < 0:
                fail(where, f"{key} must be a finite number >= 0, got {value!r}")
            return float(value)  # an optimizer coefficient (checked in make_spec)
        fail(where, f"unknown setting {key!r}{did_you_mean(key, SETTINGS)}; allowed: "
                     f"{', '.join(SETTINGS)} and the "
                     "optimizer's coefficients and schedule's parameters (see `dnnbench list`)")
    kind = setting.kind
    if key == "eval_every" and value == "epoch":
        return value
    if kind == "pair":
        if not isinstance(value, str) or not re.fullmatch(r"\d+v\d+|default", value):
            fail(where, f"{key} must be two class labels POSvNEG like \"3v5\", or "
                         f"\"default\", got {value!r}")
        return value
    if kind == "widths":
        if (not isinstance(value, list) or not value
                or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 65536
                           for w in value)):
            fail(where, f"{key} must be a non-empty list of integers from 1 to 65536, "
                         f"got {value!r}")
        return tuple(value)
    if kind == "bool":
        if not isinstance(value, bool):
            fail(where, f"{key} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            fail(where, f"{key} must be a name, got {value!r}")
        if value not in setting.names and not (setting.plugins and ":" in value):
            plug = (" or a plug-in: package.module:factory or path/to/file.py:factory"
                    if setting.plugins else "")
            fail(where, f"{key}: unknown value {value!r}; allowed: "
                         f"{', '.join(setting.names)}{plug}")
        return value
    if not is_number(value) or (kind == "int" and not isinstance(value, int)):
        fail(where, f"{key} must be {'an integer' if kind == 'int' else 'a number'}, "
                     f"got {value!r}")
    if not math.isfinite(value):
        fail(where, f"{key} must be finite, got {value!r}")
    low, high = setting.minimum, setting.maximum
    too_high = high is not None and (value >= high if setting.open_max else value > high)
    if (low is not None and value < low) or too_high:
        right = ")" if setting.open_max else "]"
        fail(where, f"{key} must be in [{low:g}, {'inf' if high is None else f'{high:g}'}"
                     f"{right}, got {value!r}")
    return int(value) if kind == "int" else float(value)



# other spellings of settings (the preset commands' options, common abbreviations)
ALIASES = {"lr": "learning_rate", "bn_position": "norm_position", "steps": "max_steps",
           "batch": "batch_size", "wd": "weight_decay", "act": "activation",
           "opt": "optimizer"}


def did_you_mean(key: str, names) -> str:
    """" (did you mean NAME?)" for a misspelt setting, or "" when nothing is close."""
    import difflib

    names = list(names)
    guess = ALIASES.get(key) if ALIASES.get(key) in names else None
    guess = guess or next(iter(difflib.get_close_matches(key, names, n=1, cutoff=0.75)), None)
    return f" (did you mean {guess}?)" if guess else ""


def level_of(exp, key: str, level, where: str):
    """``level`` checked as a level of the factor ``key`` of the experiment ``exp``."""
    if key not in exp.factors:
        fail(where, f"{key!r} is not a factor; factors: {', '.join(exp.factors) or 'none'}")
    if key in exp.named_levels:
        if level not in exp.named_levels[key]:
            fail(where, f"{key}: unknown level {level!r}; levels: "
                        f"{', '.join(exp.named_levels[key])}")
        return level
    value = check_setting(key, level, where)
    if value not in exp.factors[key]:
        fail(where, f"{key}: {level!r} is not one of its levels {list(exp.factors[key])}")
    return value
