"""Pure training: the step, the on-device loop, seed vmapping, evaluation and timing."""

from dnnbench.train.devices import configure_cpu_devices

configure_cpu_devices()  # before JAX starts its backends: one CPU device per core
