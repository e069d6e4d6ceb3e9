"""The training engine: pure ``run_seeds(keys, hps, data) -> Trace`` per program.

``jax.jit(program.run_seeds)(keys, hps, data)`` trains every lane of a program in one
compiled program. A lane is one run: a seed, and the runtime hyper-parameters of its arm
(``hps``: lane name -> one float32 per lane, see ``spec.lane_values``: the learning rate,
optimizer coefficients, penalties, dropout rate, clipping threshold, BN momentum), so the
arms of one structure (``spec.group_spec``) times their seeds are one program: the step and
evaluation are pure functions vmapped over the seed axis, and ``run(key)`` is the same program
for one seed. The data arrays are arguments (never closed-over constants) and live on device;
each seed's data order is drawn on device. The step loop is a ``lax.fori_loop`` of
``eval_every`` steps inside a ``lax.while_loop`` over evaluations, so no Python runs per step.
The while loop continues until every seed is done; a seed that reached the target (when
``stop_at_target``) or diverged is frozen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dnnbench.data import scale_inputs, standardize_dataset
from dnnbench.models.mlp import (
    build_model,
    draw_sizes,
    init_variables,
    max_norm,
    standard_draws,
)
from dnnbench.registry import (
    LOSSES,
    SATURATION,
    get_initializer,
    get_schedule,
    lookup,
    plateau_start,
    plateau_step,
)
from dnnbench.spec import INIT_SCALE, RunSpec, has_batch_norm
from dnnbench.train import optim
from dnnbench.train.optim import learning_rate_at, schedule_parameters, setting

Data = dict[str, jax.Array]  # x_train, y_train, x_eval, y_eval, x_test, y_test


class TrainState(NamedTuple):
    params: Any
    batch_stats: Any
    opt_state: Any
    perms: jax.Array  # (epochs, n_train) int32: the data order of every epoch
    dropout_key: jax.Array


class SeedInputs(NamedTuple):
    """What a run draws before its first step (leading seed axis when batched)."""

    perms: jax.Array  # (epochs, n_train) int32: the data order of every epoch
    draws: dict  # distribution -> standard draws that the initial kernels are carved from


class Trace(NamedTuple):
    """What one run returns (per seed; vmapped runs add a leading seed axis)."""

    steps: jax.Array  # (n_evals,) step count at each evaluation
    train_loss: jax.Array  # (n_evals,) mean training loss over the steps since the last eval
    eval_loss: jax.Array  # (n_evals,) loss on the eval split
    eval_acc: jax.Array  # (n_evals,) accuracy on the eval split
    n_done: jax.Array  # () evaluations actually performed (the rest of the curves are padding)
    diverged: jax.Array  # () bool: loss became NaN/inf
    test_loss: jax.Array  # () final loss on the test split
    test_acc: jax.Array  # () final accuracy on the test split
    params: Any = None  # final parameters, when requested
    lr: Any = None  # (n_evals,) learning rate of the schedule at the last step before each eval
    # what the regularization settings add (None without them), name -> array:
    # eval_train: "clean_train_loss", "train_accuracy" (n_evals,) curves of the training split
    # evaluated without dropout or penalty, and "final_train_loss_clean",
    # "final_train_accuracy" () of the final parameters; early_stopping: "restored_step" () the
    # step whose parameters were restored; mc_samples: "mc" (see ``mc_predictions``)
    extra: Any = None
    # (n_evals + 1, depth, len(DIAG_COLUMNS)) per-layer diagnostics at step 0 and at each
    # evaluation (NaN where none was made), when the spec asks for them
    layers: Any = None


# The per-layer diagnostics (spec.diagnostics), over the first DIAG_BATCH examples of the eval
# split in evaluation mode: mean and std of the layer's pre-activations (the activation's input)
# and activations (its output) over every (example, unit) value; the fraction of saturated units
# (registry.SATURATION: sigmoid/tanh outputs within 1% of a bound, ReLU-family units whose
# pre-activation is <= 0 on every example); the norm of the gradient of the batch's mean
# loss with respect to the layer's kernel; the fraction of dead units: those whose incoming
# weights get exactly zero gradient from the batch (zero on every example: a ReLU unit that is
# off throughout; a leaky unit still gets gradient in its negative regime, so it is not dead).
DIAG_COLUMNS = ("pre_mean", "pre_std", "act_mean", "act_std", "saturated", "grad_norm", "dead")
DIAG_BATCH = 512


class Rows(NamedTuple):
    """Row counts to pad the train / eval / test arrays to, so that data sets of different
    sizes (the class pairs of a transfer sweep) share one compiled program."""

    train: int
    eval: int
    test: int


def to_device(data, spec: RunSpec, rows: Rows | None = None) -> Data:
    """The arrays one run needs, as device arrays (eval split chosen by ``spec.eval_split``;
    standardized with the training split's per-feature statistics if ``spec.standardize``;
    features scaled as ``spec.inputs`` says).

    With ``rows``, every split is padded with zero rows to that count; ``n_train`` (the real
    number of training examples: data orders only draw from those) and the weights
    ``w_eval`` / ``w_test`` (1 for a real example, 0 for padding) come with them."""
    if spec.standardize:
        data = standardize_dataset(data)
    if spec.inputs != "unit":
        data = scale_inputs(data, spec.inputs)
    x_eval, y_eval = data.split(spec.eval_split)
    arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_eval": x_eval,
              "y_eval": y_eval, "x_test": data.x_test, "y_test": data.y_test}
    if rows is not None:
        size = {"train": rows.train, "eval": rows.eval, "test": rows.test}
        real = {split: len(arrays[f"y_{split}"]) for split in size}
        if any(real[s] > size[s] for s in size):
            raise ValueError(f"data of {real} rows do not fit in {rows}")
        arrays = {k: np.concatenate([v, np.zeros((size[k[2:]] - len(v), *np.shape(v)[1:]),
                                                 np.asarray(v).dtype)])
                  for k, v in arrays.items()}
        arrays |= {f"w_{s}": (np.arange(size[s]) < real[s]) for s in ("eval", "test")}
    dev = {k: jnp.asarray(v, jnp.int32 if k.startswith("y") else jnp.float32)
           for k, v in arrays.items()}
    if rows is not None:
        dev["n_train"] = jnp.int32(len(data.y_train))
    return dev


def per_example(logits: jax.Array, labels: jax.Array, kind: str, inputs=None):
    """(loss, correct) of every example under the loss ``kind`` (registry.LOSSES); a
    reconstruction loss compares the outputs with the ``inputs`` instead of the labels."""
    loss = lookup(LOSSES, kind, "loss")
    return loss.fn(logits, inputs if loss.reconstructs else labels)


def kernels_of(params) -> list[jax.Array]:
    """The kernels among ``params`` (leaves named ``kernel``: biases, scales and statistics
    left out), as the penalties and the sparsity metric read them."""
    return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
            if getattr(path[-1], "key", None) == "kernel"]


def kernel_sparsity(params, threshold) -> jax.Array:
    """The fraction of the weights of every kernel with |w| below ``threshold`` (l1's
    sparsity)."""
    leaves = kernels_of(params)
    small = sum(jnp.sum(jnp.abs(leaf) < threshold) for leaf in leaves)
    return small / sum(leaf.size for leaf in leaves)


def loss_and_accuracy(logits: jax.Array, labels: jax.Array, kind: str, inputs=None):
    """(mean loss, accuracy)."""
    loss, correct = per_example(logits, labels, kind, inputs)
    return loss.mean(), jnp.mean(correct)


def seed_keys(seeds) -> jax.Array:
    """One PRNG key per seed number; seed i of every arm gets the same key (paired arms)."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def split_key(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The named keys of a run: (init_key, data_key, dropout_key)."""
    init_key, data_key, dropout_key = jax.random.split(key, 3)
    return init_key, data_key, dropout_key


@partial(jax.jit, static_argnames=("n_epochs", "n_rows"))
def data_orders(keys: jax.Array, n_epochs: int, n_rows: int, n_real=None) -> jax.Array:
    """The data order of every epoch of the budget for each seed, (seeds, epochs, n_rows)
    int32, on device: argsort of random bits from each run's data key (a tie, probability
    ~n^2/2^33 per epoch, keeps index order: still a permutation). With ``n_real`` (padded
    data), the real rows come first, in random order. Computed once per arm, outside the
    training program, so that timing calls and early-stopped runs do not redo it; one jitted
    function for all arms, so arms of the same data compile it once."""
    def order(key):
        _, data_key, _ = split_key(key)
        bits = jax.random.bits(data_key, (n_epochs, n_rows))
        if n_real is not None:
            top = jnp.array(jnp.iinfo(bits.dtype).max, bits.dtype)
            bits = jnp.where(jnp.arange(n_rows) < n_real, bits, top)
        return jnp.argsort(bits, axis=-1)
    return jax.vmap(order)(keys).astype(jnp.int32)


_RECENT: dict[str, dict[tuple, Any]] = {"orders": {}, "draws": {}}


def _recent(kind: str, key: tuple, compute: Callable[[], Any], keep: int = 2):
    """``compute()``, remembered for the last ``keep`` keys of its ``kind``."""
    store = _RECENT[kind]
    hit = store.get(key)
    if hit is None:
        hit = compute()
        if len(store) >= keep:
            store.pop(next(iter(store)))
        store[key] = hit
    return hit


def _keys_key(keys: jax.Array) -> tuple:
    return np.asarray(keys).tobytes(), keys.shape, keys.sharding


def shared_data_orders(keys: jax.Array, n_epochs: int, n_rows: int, n_real=None) -> jax.Array:
    """``data_orders``, remembered for the last two arguments seen: the arms of a sweep share
    their seeds and data, so they share their data orders too, computed once (an argsort per
    epoch and seed: 3 seeds x 28 epochs of MNIST take 1.6 s on 2 CPU cores). Traced
    arguments are passed through."""
    if any(isinstance(a, jax.core.Tracer) for a in (keys, n_real)):
        return data_orders(keys, n_epochs, n_rows, n_real)
    key = (*_keys_key(keys), n_epochs, n_rows, None if n_real is None else int(n_real))
    return _recent("orders", key, lambda: data_orders(keys, n_epochs, n_rows, n_real))


def shared_draws(keys: jax.Array, sizes: tuple[tuple[str, int], ...]) -> dict:
    """``standard_draws`` of each run's init key, remembered for the last two arguments: they
    depend on the seeds and the (rounded) draw sizes only, so the arms of a transfer sweep
    (45 class pairs x 3 arms on digits) draw three times instead of 135."""
    def draw():
        return standard_draws(jax.vmap(lambda k: split_key(k)[0])(keys), sizes)
    if isinstance(keys, jax.core.Tracer):
        return draw()
    return _recent("draws", (*_keys_key(keys), sizes), draw)


class Control(NamedTuple):
    """Runtime (traced, unbatched) knobs of a run; the defaults are the spec's protocol."""

    max_evals: jax.Array  # int32: evaluations (chunks of eval_every steps) to run at most
    evaluate: jax.Array  # bool: evaluate (off only to time pure training steps)
    target: jax.Array  # float32: stop a seed once its eval accuracy reaches this (inf: never)
    chunk_steps: jax.Array  # int32: training steps between evaluations (eval_every)
    test_eval: jax.Array  # bool: evaluate the final parameters on the test split (when the
    # eval split is the test split: the last evaluation's numbers, NaN if there was none)


def full_control(spec: RunSpec, *, max_evals: int | None = None, evaluate: bool = True,
                 early_stop: bool = True, chunk_steps: int | None = None,
                 test_eval: bool | None = None) -> Control:
    stop = spec.stop_at_target and spec.target > 0 and early_stop
    return Control(jnp.int32(spec.n_evals if max_evals is None else max_evals),
                   jnp.bool_(evaluate), jnp.float32(spec.target if stop else jnp.inf),
                   jnp.int32(spec.eval_every if chunk_steps is None else chunk_steps),
                   jnp.bool_(evaluate if test_eval is None else test_eval))


class Program(NamedTuple):
    """The pure functions of one arm. ``init``, ``train_step`` and ``evaluate`` are per seed;
    ``run_seeds`` trains a batch of seeds (leading axis) and ``run`` one seed."""

    shuffles: Callable  # (key, data) -> (epochs, rows) int32 data order
    seed_inputs: Callable  # (keys, data) -> SeedInputs: data orders and initial draws
    init: Callable  # (key, hp, data, init_params=None, pre=None) -> TrainState
    train_step: Callable  # (state, t, hp, data) -> (state, loss)
    train_chunk: Callable  # (state, t0, hp, data, n_steps) -> (state, mean loss)
    evaluate: Callable  # (params, batch_stats, x, y, w=None) -> (loss, acc)
    run_seeds: Callable  # (keys, hps, data, init_params=None, ctrl=None, pre=None) -> Trace
    run: Callable  # (key, hp, data, init_params=None, ctrl=None, pre=None) -> Trace
    diagnose: Callable  # (params, batch_stats, hp, data) -> (depth, len(DIAG_COLUMNS))
    # (keys, hps, data, init_params, ctrl, pre, carry, start, until) -> (carry, trace, ended,
    # done): run_seeds in segments (progress between calls)
    segment_seeds: Callable
    carry_shapes: Callable  # (keys, hps, data, init_params, ctrl, pre) -> the carry's shapes


def as_lanes(hp) -> dict:
    """``hp`` as lane values: a bare learning rate (a number or an array) is ``{"learning_rate":
    hp}``."""
    return hp if isinstance(hp, dict) else {"learning_rate": hp}


def penalty(spec: RunSpec, hp: dict, params) -> jax.Array | float:
    """l1 * sum(|kernel|) + l2 * sum(kernel^2) over the kernels (biases and BN excluded); 0 when
    the program applies neither."""
    kernels = kernels_of(params)
    total = 0.0
    for name, term in (("l1", jnp.abs), ("l2", jnp.square)):
        if getattr(spec, name) != 0:  # applied by the program (see spec.group_spec)
            total = total + setting(spec, hp, name) * sum(jnp.sum(term(k)) for k in kernels)
    return total


def _keep(active: jax.Array, new, old):
    """``new`` for the active seeds, ``old`` for the others (leaves with a leading seed axis)."""
    def pick(n, o):
        return jnp.where(active.reshape(active.shape + (1,) * (n.ndim - 1)), n, o)
    return jax.tree_util.tree_map(pick, new, old)


def _seed_groups(n_seeds: int, chunk: int | None) -> tuple[Callable, Callable]:
    """(split, join): a tree with a leading lane axis cut into consecutive groups of ``chunk``
    lanes (a new leading axis, for ``lax.map``), and put back (None: one group)."""
    chunk = n_seeds if chunk is None else chunk
    if n_seeds % chunk:
        raise ValueError(f"chunk {chunk} does not divide {n_seeds} seeds")
    split = partial(jax.tree_util.tree_map,
                    lambda a: a.reshape((n_seeds // chunk, chunk, *a.shape[1:])))
    join = partial(jax.tree_util.tree_map, lambda a: a.reshape((n_seeds, *a.shape[2:])))
    return split, join


def _lanes(carry: tuple) -> tuple:
    """A batch's loop carry as ``segment_seeds`` passes it between calls: without the data
    orders, and its one unbatched leaf (the evaluation count) given a lane axis, as every
    other leaf has."""
    return (carry[0]._replace(perms=None), jnp.broadcast_to(carry[1], carry[2].shape),
            *carry[2:])


def _unlanes(carry: tuple) -> tuple:
    return (carry[0], carry[1][0], *carry[2:])


def _blank(shapes):
    """Arrays of ``shapes`` (a tree of ShapeDtypeStruct): NaN where floating, else 0."""
    return jax.tree_util.tree_map(lambda a: jnp.full(
        a.shape, jnp.nan if jnp.issubdtype(a.dtype, jnp.floating) else 0, a.dtype), shapes)


MC_KEY = 2**31 - 1  # folded into a seed's dropout key: the masks of its MC dropout passes
EVAL_BLOCK = 2000  # examples per block of an evaluation (keeps activations in cache)


def make_program(spec: RunSpec, n_classes: int, n_train: int, *,
                 make_tx: Callable = optim.make_tx, return_params: bool = False,
                 merge_params: Callable | None = None, n_features: int | None = None
                 ) -> Program:
    """Build the pure functions of an arm.

    ``make_tx(spec, hp)`` builds the optimizer of one lane (``hp``: its lane values; default
    :func:`dnnbench.train.optim.make_tx`; a caller's own, for freezing/masking, is built from
    it);
    ``merge_params(fresh_params, init_params)`` lets a caller start from given weights
    (transfer learning); it then receives ``init_params`` as the 4th argument of init/run.
    """
    if spec.batch_size > n_train:
        raise ValueError(f"batch size {spec.batch_size} is larger than the training split ({n_train})")
    model = build_model(spec, n_classes, n_features)
    plugin = spec.model != "mlp"  # a user's module: initialized by its own init
    bs = spec.batch_size
    steps_per_epoch = n_train // bs
    n_epochs = math.ceil(spec.max_steps / steps_per_epoch)
    n_evals = spec.n_evals

    def orders(keys, data):
        return shared_data_orders(keys, n_epochs, data["x_train"].shape[0], data.get("n_train"))

    def shuffles(key, data) -> jax.Array:
        """The data order of every epoch of the budget, (epochs, rows) int32."""
        return orders(key[None], data)[0]

    def seed_inputs(keys, data) -> SeedInputs:
        """What a run draws at its start, for a batch of seeds, computed in programs that all
        arms share (kernel draws rounded up to a power of two): the data order of every epoch
        and the standard draws of the initial kernels."""
        if plugin:
            return SeedInputs(orders(keys, data), {})
        x1 = jax.ShapeDtypeStruct((1, data["x_train"].shape[1]), jnp.float32)
        sizes = tuple((dist, 1 << (n - 1).bit_length()) for dist, n in draw_sizes(model, x1))
        return SeedInputs(orders(keys, data), shared_draws(keys, sizes))

    def init(key, hp, data, init_params=None, pre=None) -> TrainState:
        """The state of one seed at step 0 (``pre``: its ``SeedInputs``, else drawn here)."""
        init_key, _, dropout_key = split_key(key)
        hp = as_lanes(hp)
        gain = None
        if INIT_SCALE in hp:  # the initializer's scale is a lane: sqrt(lane / the spec's)
            gain = jnp.sqrt(hp[INIT_SCALE] / get_initializer(spec.init).scale)
        if plugin:
            variables = model.init({"params": init_key}, data["x_train"][:1], train=False)
        else:
            variables = init_variables(model, init_key, data["x_train"][:1],
                                       None if pre is None else pre.draws, gain)
        params = variables["params"]
        if merge_params is not None:
            params = merge_params(params, init_params)
        batch_stats = variables.get("batch_stats", {})
        opt_state = make_tx(spec, hp).init(params)
        perms = shuffles(key, data) if pre is None else pre.perms
        return TrainState(params, batch_stats, opt_state, perms, dropout_key)

    def diagnose(params, batch_stats, hp, data) -> jax.Array:
        """The per-layer diagnostics of one seed, (depth, len(DIAG_COLUMNS))."""
        x, y = data["x_eval"][:DIAG_BATCH], data["y_eval"][:DIAG_BATCH]

        def loss_fn(p):
            logits, inter = eval_model(hp).apply({"params": p, "batch_stats": batch_stats}, x,
                                                 train=False, mutable=["intermediates"])
            return loss_and_accuracy(logits, y, spec.loss, x)[0], inter["intermediates"]

        grads, inter = jax.grad(loss_fn, has_aux=True)(params)
        saturation = SATURATION.get(spec.activation, lambda pre, act: jnp.float32(jnp.nan))
        rows = []
        for i in range(spec.depth):
            pre, act = inter[f"pre_{i}"][0], inter[f"act_{i}"][0]
            kernel = grads[f"hidden_{i}"]["kernel"]  # (inputs, units)
            rows.append(jnp.stack([pre.mean(), pre.std(), act.mean(), act.std(),
                                   saturation(pre, act).astype(jnp.float32),
                                   jnp.linalg.norm(kernel),
                                   jnp.mean(jnp.all(kernel == 0, axis=0)).astype(jnp.float32)]))
        return jnp.stack(rows)

    def eval_model(hp):
        """The model of an evaluation: the lane values that change its function (the leaky
        slope, the normalizations' epsilon; dropout and BN momentum act in training only)."""
        return lane_model({} if hp is None else hp, ("leaky_slope", "bn_epsilon"))

    def lane_model(hp, keys=("dropout", "bn_momentum", "leaky_slope", "bn_epsilon")):
        """The model with the lane values it takes (dropout rate, BN momentum, leaky slope,
        epsilon)."""
        changes = {k: hp[k] for k in keys if k in hp}
        return model.clone(**changes) if changes else model

    def train_step(state: TrainState, t, hp, data):
        hp = as_lanes(hp)
        idx = jax.lax.dynamic_slice_in_dim(state.perms[t // steps_per_epoch],
                                           (t % steps_per_epoch) * bs, bs)
        xb, yb = data["x_train"][idx], data["y_train"][idx]
        rngs = {"dropout": jax.random.fold_in(state.dropout_key, t)}

        def loss_fn(params):
            logits, updates = lane_model(hp).apply(
                {"params": params, "batch_stats": state.batch_stats}, xb, train=True,
                mutable=["batch_stats"], rngs=rngs)
            loss = loss_and_accuracy(logits, yb, spec.loss, xb)[0]
            return loss + penalty(spec, hp, params), updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        tx_updates, opt_state = make_tx(spec, hp).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, tx_updates)
        if spec.max_norm != 0:  # applied by the program (see spec.group_spec)
            params = max_norm(params, setting(spec, hp, "max_norm"), spec.max_norm_params)
        new = state._replace(params=params, opt_state=opt_state,
                             batch_stats=updates.get("batch_stats", state.batch_stats))
        return new, loss

    # BN statistics at evaluation (spec.bn_eval): the running averages, the training split's
    # (recomputed at each evaluation), or each evaluated batch's own
    own_stats = spec.bn_eval == "batch" and has_batch_norm(spec)
    population = spec.bn_eval == "population" and has_batch_norm(spec)

    def batch_statistics(params, batch_stats, xb, hp=None):
        """(logits, BN statistics) of ``xb`` normalized by its own statistics: the train mode
        of the model at momentum 0 (it returns the batch's statistics as the "running"
        averages), without dropout."""
        stats_model = eval_model(hp).clone(bn_momentum=0.0, dropout=0.0)
        logits, updates = stats_model.apply({"params": params, "batch_stats": batch_stats}, xb,
                                            train=True, mutable=["batch_stats"])
        return logits, updates["batch_stats"]

    def population_stats(params, batch_stats, x, hp=None):
        """The BN statistics of the training split ``x`` under ``params``: the mean over
        blocks of about EVAL_BLOCK examples of each block's own statistics (the limit of the
        running averages at momentum -> 1 with batches of that size; Ioffe & Szegedy's
        inference statistics without the m/(m-1) correction, as Flax's running variance)."""
        n_blocks = max(1, x.shape[0] // EVAL_BLOCK)
        size = x.shape[0] // n_blocks
        per_block = jax.lax.map(lambda xb: batch_statistics(params, batch_stats, xb, hp)[1],
                                x[:n_blocks * size].reshape(n_blocks, size, -1))
        return jax.tree_util.tree_map(lambda a: jnp.mean(a, axis=0), per_block)

    def eval_stats(params, batch_stats, data, hp=None):
        """The BN statistics that an evaluation of one seed uses."""
        if not population:
            return batch_stats
        if "n_train" in data:
            raise ValueError("bn_eval population: padded training data (class-pair sweeps) "
                             "is not supported")
        return population_stats(params, batch_stats, data["x_train"], hp)

    def evaluate(params, batch_stats, x, y, w=None, hp=None):
        """(mean loss, accuracy) on (x, y) (weighted by ``w`` if given: 0 for padding), in
        blocks of about EVAL_BLOCK examples; with ``bn_eval`` "batch", in batches of
        ``bn_eval_batch`` examples, each normalized by its own statistics (the remainder is
        one smaller batch). ``hp``: the lane values of the run (its epsilon)."""
        w = jnp.ones(len(y), jnp.float32) if w is None else w.astype(jnp.float32)
        hp = {} if hp is None else as_lanes(hp)

        def block(xb, yb, wb):  # weighted sums of the block
            if own_stats:
                logits = batch_statistics(params, batch_stats, xb, hp)[0]
            else:
                logits = eval_model(hp).apply({"params": params, "batch_stats": batch_stats},
                                              xb, train=False)
            loss, correct = per_example(logits, yb, spec.loss, xb)
            return jnp.sum(wb * loss), jnp.sum(wb * correct)

        n = len(y)
        n_blocks = max(1, n // EVAL_BLOCK)
        size = n // n_blocks
        per_map = None
        if own_stats:  # one evaluated batch per block, EVAL_BLOCK examples vmapped at a time
            size = min(spec.bn_eval_batch or spec.batch_size, n)
            n_blocks = n // size
            per_map = max(1, min(n_blocks, EVAL_BLOCK // size))
        cut = n_blocks * size
        loss, acc = jax.tree_util.tree_map(jnp.sum, jax.lax.map(
            lambda b: block(*b), (x[:cut].reshape(n_blocks, size, -1),
                                  y[:cut].reshape(n_blocks, size), w[:cut].reshape(n_blocks, size)),
            batch_size=per_map))
        if cut < n:  # the remainder
            rest = block(x[cut:], y[cut:], w[cut:])
            loss, acc = loss + rest[0], acc + rest[1]
        total = jnp.sum(w)
        return loss / total, acc / total

    # The batched pieces. vmap is applied to the per-seed functions, not to the loops below
    # (vmapping a while loop would make JAX re-batch its body to a fixed point, which costs
    # seconds of tracing per arm). Jitted, so that each is traced once however often used.
    eval_seeds = jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None, None, None, 0)))
    stats_seeds = jax.vmap(eval_stats, in_axes=(0, 0, None, 0))
    diagnose_seeds = jax.vmap(diagnose, in_axes=(0, 0, 0, None))

    def steps(state, t0, n_steps, hp, data, step_fn):
        """``n_steps`` steps from step ``t0`` (a traced count); (state, mean training loss,
        the loss of the first step: at step 0, the initial loss, before any update).
        The data order is a loop constant, not part of the loop's carry (XLA would copy it)."""
        perms = state.perms

        def body(j, carry):
            s, total, first = carry
            s, loss = step_fn(s._replace(perms=perms), t0 + j, hp, data)
            return s._replace(perms=None), total + loss, jnp.where(j == 0, loss, first)
        zero = jnp.zeros(jnp.shape(hp["learning_rate"]), jnp.float32)
        state, total, first = jax.lax.fori_loop(0, n_steps, body,
                                                (state._replace(perms=None), zero, zero))
        return state._replace(perms=perms), total / n_steps, first

    def evaluate_on(params, batch_stats, data, split: str, hps):
        """(loss, accuracy) of every seed on ``split`` (eval, test or train: the training
        split as evaluated, without dropout or penalty); ``hps``: the seeds' lane values."""
        if split == "train" and "n_train" in data:
            raise ValueError("eval_train: padded training data (class-pair sweeps) is not "
                             "supported")
        return eval_seeds(params, stats_seeds(params, batch_stats, data, hps),
                          data[f"x_{split}"], data[f"y_{split}"], data.get(f"w_{split}"), hps)

    def advance(state, hps, t0, ctrl, data):
        """Every seed trains ``chunk_steps`` steps at once, then is evaluated: on the eval
        split, and on the training split too with ``spec.eval_train``."""
        new, loss, first = steps(state, t0, ctrl.chunk_steps, hps, data,
                                 jax.vmap(jax.jit(train_step), in_axes=(0, None, 0, None)))
        nan = jnp.full(jnp.shape(hps["learning_rate"]), jnp.nan, jnp.float32)
        splits = ("eval", "train") if spec.eval_train else ("eval",)
        evals = jax.lax.cond(ctrl.evaluate, lambda: tuple(
            evaluate_on(new.params, new.batch_stats, data, s, hps) for s in splits),
            lambda: ((nan, nan),) * len(splits))
        if not spec.diagnostics:
            return new, (loss, first), evals, None
        shape = (len(loss), spec.depth, len(DIAG_COLUMNS))
        diag = jax.lax.cond(ctrl.evaluate, lambda: diagnose_seeds(
            new.params, new.batch_stats, hps, data), lambda: jnp.full(shape, jnp.nan))
        return new, (loss, first), evals, diag

    def mc_predictions(params, batch_stats, hp, key, x, y) -> dict:
        """MC dropout on (x, y) for one seed: ``spec.mc_samples`` stochastic passes (dropout
        on, vmapped, each pass its own masks) and the deterministic one. Per example:
        confidence (the top probability), correct, NLL of the deterministic prediction
        ("det_*") and of the mean of the passes' probabilities ("mc_*"), and "mc_std": the
        standard deviation over the passes of the probability of the MC prediction's class."""
        if spec.loss != "softmax":
            raise ValueError("mc_samples: MC dropout needs the softmax loss")
        n, n_samples = x.shape[0], spec.mc_samples
        size = max(1, min(n, 50_000 // n_samples))  # examples x passes per block
        n_blocks = -(-n // size)
        pad = n_blocks * size - n
        xs = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])
        ys = jnp.concatenate([y, jnp.zeros((pad,), y.dtype)])
        variables = {"params": params, "batch_stats": batch_stats}
        stochastic = lane_model(hp)

        def block(args):
            b, xb, yb = args
            keys = jax.random.split(jax.random.fold_in(key, b), n_samples)
            logp = jax.vmap(lambda k: jax.nn.log_softmax(stochastic.apply(
                variables, xb, train=False, stochastic=True, rngs={"dropout": k})))(keys)
            mean_logp = jax.nn.logsumexp(logp, axis=0) - jnp.log(n_samples)
            det_logp = jax.nn.log_softmax(eval_model(hp).apply(variables, xb, train=False))
            out = {}
            for name, lp in (("det", det_logp), ("mc", mean_logp)):
                pred = jnp.argmax(lp, -1)
                out |= {f"{name}_conf": jnp.exp(jnp.max(lp, -1)),
                        f"{name}_correct": (pred == yb).astype(jnp.float32),
                        f"{name}_nll": -jnp.take_along_axis(lp, yb[:, None], -1)[:, 0]}
            pred = jnp.argmax(mean_logp, -1)
            p_pred = jnp.take_along_axis(jnp.exp(logp), pred[None, :, None], -1)[..., 0]
            return out | {"mc_std": jnp.std(p_pred, axis=0)}

        per_block = jax.lax.map(block, (jnp.arange(n_blocks), xs.reshape(n_blocks, size, -1),
                                        ys.reshape(n_blocks, size)))
        return {k: v.reshape(-1)[:n] for k, v in per_block.items()}

    def final_extra(params, batch_stats, hps, keys, data) -> dict:
        """What the regularization settings measure on the final parameters of every seed."""
        out = {}
        if spec.sparsity_threshold > 0:
            out["kernel_sparsity"] = jax.vmap(kernel_sparsity, in_axes=(0, None))(
                params, spec.sparsity_threshold)
        if spec.eval_train:
            out["final_train_loss_clean"], out["final_train_accuracy"] = evaluate_on(
                params, batch_stats, data, "train", hps)
        if spec.mc_samples:
            if "w_test" in data:
                raise ValueError("mc_samples: padded data (class-pair sweeps) is not supported")
            out["mc"] = jax.lax.map(  # one seed at a time: the passes' activations are large
                lambda a: mc_predictions(a[0], a[1], a[2], jax.random.fold_in(a[3], MC_KEY),
                                         data["x_test"], data["y_test"]),
                (params, batch_stats, hps, keys))
        return out

    plateau = get_schedule(spec.schedule).plateau  # static: other programs are unchanged
    names = ("train_loss", "eval_loss", "eval_acc") + (  # the curves the loop records
        ("clean_train_loss", "train_accuracy") if spec.eval_train else ()) + (
        ("scale",) if plateau else ())

    def run_seeds(keys, hps, data, init_params=None, ctrl=None, pre=None, *,
                  chunk: int | None = None) -> Trace:
        """Train a batch of lanes (keys and every array of ``hps`` have a leading lane axis; so
        do init_params and ``pre``, the ``seed_inputs`` of the keys, when given). ``ctrl`` (unbatched runtime
        values, see ``Control``) lets timing reuse this very executable: fewer evaluations,
        evaluation skipped, no early stop.

        The loop runs while any seed is active; a seed that reached the target or diverged is
        frozen (its state and curves no longer change), exactly as if it ran alone.

        ``chunk`` (a divisor of the number of seeds): train the seeds in consecutive groups of
        that many, each group vmapped and with its own loop (``lax.map`` over the groups), in
        one program. On a CPU a group whose states fit in the cache trains faster per seed than
        one large batch, and a group stops as soon as its own seeds are done."""
        ctrl = full_control(spec) if ctrl is None else ctrl
        hps = as_lanes(hps)
        n_seeds = keys.shape[0]
        if chunk is not None and chunk < n_seeds:
            split, join = _seed_groups(n_seeds, chunk)
            return join(jax.lax.map(lambda g: run_batch(*g, data, ctrl),
                                    split((keys, hps, init_params, pre))))
        return run_batch(keys, hps, init_params, pre, data, ctrl)

    def segment_seeds(keys, hps, data, init_params, ctrl, pre, carry, start, until, *,
                      chunk: int | None = None):
        """``run_seeds`` in segments, one call each, so that the caller can report progress
        between them (a host callback inside the loop would keep the program out of JAX's
        persistent cache). A call runs the evaluation periods of every group of seeds up to
        ``until`` (from step 0 when ``start``; else from ``carry``, the previous call's) and
        returns (carry, trace, ended, done), all with a leading lane axis: ``trace`` holds the
        final numbers of the lanes whose group ended in this call (``ended``), others are
        blank; ``done``: the lane's group has ended, now or before. One call with ``start``
        and ``until`` >= ``ctrl.max_evals`` is ``run_seeds``: the same operations in the same
        order. ``carry`` on the first call: any array tree of its shapes (``carry_shapes``)."""
        hps = as_lanes(hps)
        split, join = _seed_groups(keys.shape[0], chunk)

        def finished(carry):  # the group's budget spent, or none of its seeds active
            return (carry[1] >= ctrl.max_evals) | ~jnp.any(carry[2])

        def group(keys, hps, init_params, pre, carry):
            # the data orders stay out of the carry (MNIST: 6 MB a lane); taken anew each call
            perms = pre.perms if pre is not None else \
                jax.vmap(shuffles, in_axes=(0, None))(keys, data)
            carry = jax.lax.cond(start, lambda: _lanes(begin_batch(
                keys, hps, init_params, pre, data, ctrl)), lambda: carry)
            carry = _unlanes(carry)
            carry = (carry[0]._replace(perms=perms), *carry[1:])
            was_done = ~start & finished(carry)
            carry = loop_batch(carry, hps, data, ctrl, until)
            done = finished(carry)
            ends = done & ~was_done
            shapes = jax.eval_shape(lambda c: end_batch(c, hps, data, ctrl), carry)
            trace = jax.lax.cond(ends, lambda: end_batch(carry, hps, data, ctrl),
                                 lambda: _blank(shapes))
            lanes = keys.shape[0]
            return (_lanes(carry), trace, jnp.broadcast_to(ends, (lanes,)),
                    jnp.broadcast_to(done, (lanes,)))

        return join(jax.lax.map(lambda g: group(*g), split((keys, hps, init_params, pre, carry))))

    def carry_shapes(keys, hps, data, init_params=None, ctrl=None, pre=None, *,
                     chunk: int | None = None):
        """The shapes of ``segment_seeds``'s carry for these arguments."""
        ctrl = full_control(spec) if ctrl is None else ctrl
        split, join = _seed_groups(keys.shape[0], chunk)

        def begin(keys, hps, init_params, pre):
            return join(jax.lax.map(lambda g: _lanes(begin_batch(*g, data, ctrl)),
                                    split((keys, hps, init_params, pre))))
        return jax.eval_shape(begin, keys, as_lanes(hps), init_params, pre)

    def run_batch(keys, hps, init_params, pre, data, ctrl) -> Trace:
        """``run_seeds`` on one vmapped batch of seeds: its loop from step 0 to the end."""
        carry = begin_batch(keys, hps, init_params, pre, data, ctrl)
        return end_batch(loop_batch(carry, hps, data, ctrl, ctrl.max_evals), hps, data, ctrl)

    def begin_batch(keys, hps, init_params, pre, data, ctrl) -> tuple:
        """The loop's carry at step 0 of one vmapped batch of seeds."""
        n_seeds = keys.shape[0]
        state = jax.vmap(init, in_axes=(0, 0, None, None if init_params is None else 0,
                                        None if pre is None else 0))(
            keys, hps, data, init_params, pre)
        nan_seeds = jnp.full((n_seeds,), jnp.nan, jnp.float32)
        nan_curves = jnp.full((n_seeds, n_evals), jnp.nan, jnp.float32)
        false = jnp.zeros((n_seeds,), bool)
        # early stopping (spec.early_stopping): the lowest eval loss so far, its step and variables,
        # and the evaluations since
        stopping = None if not spec.early_stopping else {
            "best": jnp.full((n_seeds,), jnp.inf, jnp.float32),
            "variables": (state.params, state.batch_stats),
            "step": jnp.zeros((n_seeds,), jnp.int32), "wait": jnp.zeros((n_seeds,), jnp.int32)}

        init_carry = (state, jnp.int32(0), ~false, jnp.zeros((n_seeds,), jnp.int32), false,
                      false, dict.fromkeys(names, nan_curves), (nan_seeds, nan_seeds),
                      plateau_start((n_seeds,)) if plateau else None, stopping, None,
                      nan_seeds)
        if spec.diagnostics:  # step 0, then one row per evaluation
            layers = jnp.full((n_seeds, n_evals + 1, spec.depth, len(DIAG_COLUMNS)), jnp.nan)
            at_init = jax.lax.cond(ctrl.evaluate, lambda: diagnose_seeds(
                state.params, state.batch_stats, hps, data), lambda: layers[:, 0])
            init_carry = (*init_carry[:-2], layers.at[:, 0].set(at_init), init_carry[-1])
        return init_carry

    def loop_batch(carry, hps, data, ctrl, until) -> tuple:
        """The carry after the evaluation periods from its own up to ``until`` (and at most
        ``ctrl.max_evals``), while any seed is active."""
        false = jnp.zeros_like(carry[2])
        plateau_params = schedule_parameters(spec, hps)
        last_period = jnp.minimum(until, ctrl.max_evals)

        def cond(c):
            i, active = c[1], c[2]
            return (i < last_period) & jnp.any(active)

        def body(c):
            state, i, active, n_done, diverged, reached, curves, last, pl, es, layers, first = c
            run_hps = hps if pl is None else {  # performance scheduling: the scaled rate
                **hps, "learning_rate": hps["learning_rate"] * pl.scale}
            new, (loss, first_step), evals, diag = advance(state, run_hps, i * spec.eval_every,
                                                           ctrl, data)
            if layers is not None:
                layers = _keep(active, layers.at[:, i + 1].set(diag), layers)
            e_loss, e_acc = evals[0]
            state = _keep(active, new._replace(perms=state.perms), state)
            values = (loss, e_loss, e_acc) + tuple(v for ev in evals[1:] for v in ev) + (
                () if pl is None else (pl.scale,))
            curves = {k: _keep(active, curves[k].at[:, i].set(v), curves[k])
                      for k, v in zip(names, values, strict=True)}
            last = _keep(active, (e_loss, e_acc), last)
            if pl is not None:
                pl = _keep(active, plateau_step(pl, e_loss, **plateau_params), pl)
            # diverged: a non-finite loss, or (divergence_factor) a period's mean loss above
            # that multiple of the seed's initial loss (its first step's, before any update)
            first = jnp.where(i == 0, first_step, first)
            bad = active & ~jnp.isfinite(loss)
            if spec.divergence_factor > 0:
                bad = bad | active & (loss > spec.divergence_factor * first)
            hit = active & (e_acc >= ctrl.target)
            stop = false
            if es is not None:
                better = active & (e_loss < es["best"])
                es = {"best": jnp.where(better, e_loss, es["best"]),
                      "variables": _keep(better, (state.params, state.batch_stats),
                                         es["variables"]),
                      "step": jnp.where(better, (i + 1) * spec.eval_every, es["step"]),
                      "wait": jnp.where(better, 0, es["wait"] + active.astype(jnp.int32))}
                stop = active & (es["wait"] >= spec.early_stopping)
            n_done = n_done + active.astype(jnp.int32)
            return (state, i + 1, active & ~bad & ~hit & ~stop, n_done, diverged | bad,
                    reached | hit, curves, last, pl, es, layers, first)

        return jax.lax.while_loop(cond, body, carry)

    def end_batch(carry, hps, data, ctrl) -> Trace:
        """The trace of one vmapped batch of seeds from the carry its loop ended with."""
        state, _, _, n_done, diverged, _, curves, last, _, stopping, layers, _ = carry
        n_seeds = n_done.shape[0]
        nan_seeds = jnp.full((n_seeds,), jnp.nan, jnp.float32)
        # the final parameters: with early stopping, those of the lowest eval loss (restored)
        params, batch_stats = (state.params, state.batch_stats) if stopping is None else \
            stopping["variables"]

        def test_eval():
            return evaluate_on(params, batch_stats, data, "test", hps)

        if spec.eval_split == "test" and stopping is None:
            # The last evaluation already saw the final parameters (a frozen seed keeps both);
            # no second copy of the evaluation in the program (it costs compile time).
            # A run that made no evaluation (only possible with a custom ``ctrl``) has none.
            def final():
                made = ctrl.evaluate & (n_done > 0)
                return tuple(jnp.where(made, v, jnp.nan) for v in last)
        else:
            final = test_eval
        t_loss, t_acc = jax.lax.cond(ctrl.test_eval, final, lambda: (nan_seeds, nan_seeds))
        t_loss = jnp.where(diverged, jnp.nan, t_loss)
        t_acc = jnp.where(diverged, jnp.nan, t_acc)
        steps = jnp.broadcast_to((jnp.arange(n_evals, dtype=jnp.int32) + 1) * spec.eval_every,
                                 (n_seeds, n_evals))
        lr = jax.vmap(lambda h, s: jnp.broadcast_to(
            jnp.asarray(learning_rate_at(spec, h, s - 1), jnp.float32), s.shape))(hps, steps)
        if plateau:  # the scale of performance scheduling in each evaluation period
            lr = lr * curves["scale"]
        extra = {k: curves[k] for k in ("clean_train_loss", "train_accuracy") if k in curves}
        if spec.eval_train or spec.mc_samples or spec.sparsity_threshold > 0:
            shapes = jax.eval_shape(final_extra, params, batch_stats, hps, state.dropout_key,
                                    data)
            finals = jax.lax.cond(
                ctrl.test_eval, lambda: final_extra(params, batch_stats, hps,
                                                    state.dropout_key, data),
                lambda: jax.tree_util.tree_map(lambda a: jnp.full(a.shape, jnp.nan, a.dtype),
                                               shapes))
            extra |= {k: jax.tree_util.tree_map(lambda a: jnp.where(
                diverged.reshape((-1,) + (1,) * (a.ndim - 1)), jnp.nan, a), v)
                for k, v in finals.items()}
        if stopping is not None:
            extra["restored_step"] = stopping["step"]
        return Trace(steps, curves["train_loss"], curves["eval_loss"], curves["eval_acc"],
                     n_done, diverged, t_loss, t_acc, params if return_params else None, lr,
                     extra or None, layers)

    def run(key, hp, data, init_params=None, ctrl=None, pre=None) -> Trace:
        """Train one lane: ``run_seeds`` on a batch of one (``hp``: lane name -> value)."""
        add = partial(jax.tree_util.tree_map, lambda a: jnp.asarray(a)[None])
        hp = {k: jnp.asarray(v, jnp.float32) for k, v in as_lanes(hp).items()}
        trace = run_seeds(add(key), add(hp), data,
                          None if init_params is None else add(init_params), ctrl,
                          None if pre is None else add(pre))
        return jax.tree_util.tree_map(lambda a: a[0], trace)

    def train_chunk(state, t0, hp, data, n_steps):
        """One lane: ``n_steps`` steps from step ``t0``; (state, mean training loss)."""
        return steps(state, t0, n_steps, as_lanes(hp), data, train_step)[:2]

    return Program(shuffles, seed_inputs, init, train_step, train_chunk, evaluate, run_seeds,
                   run, lambda params, batch_stats, hp, data: diagnose(
                       params, batch_stats, as_lanes(hp), data), segment_seeds, carry_shapes)


def first_reach(steps: np.ndarray, acc: np.ndarray, n_done: int, target: float) -> int | None:
    """The first evaluated step whose accuracy is >= target, or None if never (censored).
    Compared in float32, as the program compares when it stops a seed at the target: 4,500 of
    5,000 is float32(0.9), which is below the float64 0.9."""
    hits = np.flatnonzero(np.asarray(acc[:n_done], np.float32) >= np.float32(target))
    return int(steps[hits[0]]) if hits.size else None
