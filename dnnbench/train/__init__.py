"""Pure training: the step, the on-device loop, seed vmapping, evaluation and timing."""
