"""The packaged experiment files (one ``.toml`` per experiment; see :mod:`dnnbench.definition.experiment`).

A file added here is listed by ``dnnbench list``, runs as ``dnnbench run NAME`` and is tested
by the catalogue contract test (tests/test_experiment_files.py): it loads, and its quick
variant runs."""
