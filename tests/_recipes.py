"""What an executor ships for a unit: a small pickled recipe that rebuilds the same unit."""

from __future__ import annotations

import pickle

import pandas as pd

TIMING = ["compile_s", "step_ms", "eval_ms", "time_to_target_s"]


def assert_recipe_rebuilds_the_unit(unit, store, timing=TIMING):
    """The unit's task, pickled, is names and numbers (not the data set); run in this process
    it has the unit's key material and gives the unit's tables (the ``timing`` columns
    aside). Returns the tables the recipe gave."""
    from dnnbench.run.executors import run_task, task_for

    blob = pickle.dumps(task_for(unit, store))
    assert len(blob) < 8000  # names and numbers, not the data set
    material, (runs, curves) = run_task(pickle.loads(blob))
    assert material == store.key_material(unit)
    local_runs, local_curves = unit.compute()
    pd.testing.assert_frame_equal(runs.drop(columns=timing), local_runs.drop(columns=timing))
    pd.testing.assert_frame_equal(curves, local_curves)
    return runs, curves
