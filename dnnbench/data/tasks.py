"""Tasks of the transfer protocol: a class pair of a data set is task B (``pos`` labelled 1,
``neg`` 0); the other classes are task A, relabelled ``0..n-3`` in increasing order of their
original label (every split is filtered the same way, so no task-B image is ever in task A)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from dnnbench.data.base import Dataset
from dnnbench.definition.protocols import DEFAULT_PAIRS, FALLBACK_PAIR


def default_pair(data: Dataset) -> tuple[int, int]:
    pair = DEFAULT_PAIRS.get(data.name, FALLBACK_PAIR)
    return pair if max(pair) < data.n_classes else FALLBACK_PAIR


def all_pairs(n_classes: int) -> list[tuple[int, int]]:
    """Every unordered pair of classes, the smaller label first (= positive): 45 for 10."""
    return list(itertools.combinations(range(n_classes), 2))


def check_pair(pair: tuple[int, int], n_classes: int) -> None:
    """ValueError (user-facing message) for a pair that names no class or one class twice."""
    pos, neg = pair
    for c in pair:
        if not 0 <= c < n_classes:
            raise ValueError(f"class {c} does not exist (classes are 0..{n_classes - 1})")
    if pos == neg:
        raise ValueError(f"the two classes of a pair must differ, got {pos} twice")
    if n_classes < 3:
        raise ValueError(f"task A needs at least one class besides the pair; the data set has "
                         f"only {n_classes} classes")


def unlabeled_task(data: Dataset) -> Dataset:
    """Every image of every split, as unlabeled data (an autoencoder's task: the labels stay
    in the arrays but a reconstruction loss never reads them)."""
    return dataclasses.replace(data, source=f"{data.source}; unlabeled: every image, labels "
                                              "unused")


ROTATION_SEED = 0  # the draw of each image's quarter turns (the same in every run)


def image_side(n_features: int) -> int | None:
    """The side of square images of ``n_features`` pixels (None: not square)."""
    side = math.isqrt(n_features)
    return side if side * side == n_features else None


def rotation_task(data: Dataset) -> Dataset:
    """Every image of every split turned by k quarter turns (k drawn uniformly from 0..3 per
    image, from :data:`ROTATION_SEED`), labelled k: an auxiliary task whose labels come from
    the images themselves; ValueError for images that are not square."""
    side = image_side(data.n_features)
    if side is None:
        raise ValueError(f"the rotation task needs square images; {data.name} has "
                         f"{data.n_features} features per example")
    rng = np.random.default_rng(ROTATION_SEED)
    splits = {}
    for split in ("train", "val", "test"):
        x = data.split(split)[0].reshape(-1, side, side)
        k = rng.integers(0, 4, len(x)).astype(np.int32)
        turned = np.empty_like(x)
        for q in range(4):
            turned[k == q] = np.rot90(x[k == q], q, axes=(1, 2))
        splits[split] = (turned.reshape(len(x), -1), k)
    return Dataset(name=data.name, x_train=splits["train"][0], y_train=splits["train"][1],
                   x_val=splits["val"][0], y_val=splits["val"][1], x_test=splits["test"][0],
                   y_test=splits["test"][1], n_classes=4, hashes=data.hashes,
                   source=f"{data.source}; rotation: each image turned by k quarter turns, "
                          "labelled k", class_names=("0", "90", "180", "270"))


def task_b_train_count(data: Dataset, pos: int, neg: int) -> int:
    """Training images available to task B (both classes together)."""
    return int(np.isin(data.y_train, (pos, neg)).sum())


def split_tasks(data: Dataset, pos: int, neg: int, train_size: int | None = None
                ) -> tuple[Dataset, Dataset]:
    """(task A, task B) as Datasets named like ``data``.

    Task A: every split without the classes ``pos`` and ``neg``, labels relabelled 0..n-3 in
    increasing order of the original label. Task B: only ``pos`` (label 1) and ``neg`` (label 0);
    its training split is the first ``train_size`` task-B training images (all if None).
    """
    check_pair((pos, neg), data.n_classes)
    a_classes = [c for c in range(data.n_classes) if c not in (pos, neg)]
    relabel = np.full(data.n_classes, -1, np.int32)
    relabel[a_classes] = np.arange(len(a_classes), dtype=np.int32)

    def part(x, y, keep, labels, limit=None):
        idx = np.flatnonzero(keep)[:limit]
        return x[idx], labels[idx].astype(np.int32)

    splits_a, splits_b = {}, {}
    for split in ("train", "val", "test"):
        x, y = data.split(split)
        in_b = np.isin(y, (pos, neg))
        splits_a[split] = part(x, y, ~in_b, relabel[y])
        limit = train_size if split == "train" else None
        splits_b[split] = part(x, y, in_b, (y == pos).astype(np.int32), limit)

    names = data.class_names or tuple(str(c) for c in range(data.n_classes))

    def dataset(splits, n_classes, class_names, what):
        return Dataset(name=data.name, x_train=splits["train"][0], y_train=splits["train"][1],
                       x_val=splits["val"][0], y_val=splits["val"][1], x_test=splits["test"][0],
                       y_test=splits["test"][1], n_classes=n_classes, hashes=data.hashes,
                       source=f"{data.source}; {what}", class_names=class_names)

    task_a = dataset(splits_a, len(a_classes), tuple(names[c] for c in a_classes),
                     f"task A: classes {a_classes} relabelled 0..{len(a_classes) - 1}")
    task_b = dataset(splits_b, 2, (names[neg], names[pos]),
                     f"task B: class {pos} (label 1) vs class {neg} (label 0), first "
                     f"{len(splits_b['train'][1])} training images")
    return task_a, task_b
