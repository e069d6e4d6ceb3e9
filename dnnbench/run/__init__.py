"""Running an experiment: planning (arms -> one compiled program per structure, lanes), the
resumable units and their store, the executors (local, dask, slurm), the protocols' unit
builders registered by name, the learning-rate range test, and the run session (lock,
signals, resume, writing the result files)."""
