"""The names the command line offers, importable without JAX so that ``--help`` stays fast.

The tables behind them (:mod:`dnnbench.registry`, :data:`dnnbench.data.DATASETS`) import JAX
or NumPy; a contract test (tests/test_cli_ux.py) checks that these tuples name exactly their
keys, in the same order.
"""

from __future__ import annotations

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "mish", "sigmoid", "tanh",
               "prelu")
INITIALIZERS = ("glorot-uniform", "glorot-normal", "he-normal", "he-uniform", "lecun-normal",
                "normal", "he-avg-uniform")
DROPOUTS = ("standard", "alpha")  # registry.DROPOUTS
LOSSES = ("softmax", "sigmoid", "mse", "reconstruction")  # registry.LOSSES
PRETEXTS = ("classes", "autoencoder", "rotation")  # run.transfer.PRETEXTS
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam",
              "adamw")
SCHEDULES = ("constant", "cosine", "exponential", "warmup-cosine", "power", "piecewise", "1cycle",
             "plateau")
DATASETS = ("mnist", "fashion-mnist", "digits", "synthetic")
FILE_DATASETS = ("mnist", "fashion-mnist")


def is_user_dataset(name: str) -> bool:
    """Whether ``name`` names a user's own data set (a .npz file, or a plug-in
    ``package.module:load`` / ``path/to/file.py:load``; :mod:`dnnbench.data.user`) rather than
    one of :data:`DATASETS`."""
    return name.endswith(".npz") or (":" in name and not name.startswith(":"))  # the ones read from (and fetched as) IDX files
BN_POSITIONS = ("before", "after")
NORMALIZATIONS = ("none", "batch", "layer", "weight", "group")  # models.norms.NORMALIZATIONS
# the normalizations with batch statistics (running averages): models.norms batch_stats
BATCH_STAT_NORMS = ("batch",)
BN_EVAL = ("running", "population", "batch")  # models.norms.BN_EVAL
# dropout after every hidden layer, or before every dense layer (the inputs too)
DROPOUT_PLACEMENTS = ("hidden", "dense")
DECAY_PARAMS = ("all", "kernels")  # what decoupled weight decay shrinks
MAX_NORM_PARAMS = ("all", "hidden")  # the kernels max-norm rescales
CLIPPINGS = ("none", "value", "norm", "global_norm")  # registry.CLIPPINGS
INPUTS = ("unit", "raw", "standardized")  # data.INPUT_SCALINGS
FALLBACKS = ("mnist", "digits")  # in this order, for a default data set that is missing


def listed(names) -> str:
    """'a, b or c'"""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
