"""A small convolutional network as a dnnbench model plug-in.

In an experiment file: ``model = "examples/cnn.py:small_cnn"`` (a path relative to the folder
the command runs in; or ``package.module:small_cnn`` when importable). dnnbench calls
``small_cnn(n_outputs)`` and trains the module it returns with its own engine: seeds and
numeric settings (the learning rate, optimizer coefficients, l1/l2, clipping) are lanes of one
compiled program, as for its MLPs. The inputs arrive flat, (batch, features): this module
reshapes square images (MNIST's 784 features: 28 x 28) into one channel.
"""

import math

import flax.linen as nn


class SmallCNN(nn.Module):
    """conv 3x3 (8) - max-pool 2 - conv 3x3 (16) - max-pool 2 - dense 64 - dense n_outputs,
    ReLU, with dropout 0.25 before the last layer in training."""

    n_outputs: int
    channels: int = 8
    dropout: float = 0.25

    @nn.compact
    def __call__(self, x, train: bool = False):
        side = math.isqrt(x.shape[-1])
        if side * side != x.shape[-1]:
            raise ValueError(f"small_cnn takes square one-channel images, got {x.shape[-1]} "
                             "features")
        x = x.reshape(x.shape[0], side, side, 1)
        for i, channels in enumerate((self.channels, 2 * self.channels)):
            x = nn.relu(nn.Conv(channels, (3, 3), name=f"conv_{i}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(64, name="dense")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.n_outputs, name="head")(x)


def small_cnn(n_outputs: int) -> nn.Module:
    """The factory dnnbench calls: the module for ``n_outputs`` logits."""
    return SmallCNN(n_outputs)
