"""A plain multilayer perceptron from the scaled features to the curve."""
from __future__ import annotations

from torch import nn

from edc.models.surrogate import EdcNet


def mlp(n_in: int, hidden, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear + GELU (+ dropout) per ``hidden`` width, then a linear layer to ``n_out``."""
    layers = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.GELU()] + ([nn.Dropout(dropout)] if dropout else [])
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class MLP(EdcNet):
    """A plain multilayer perceptron from the features to the curve."""

    def __init__(self, n_features: int, n_out: int, hidden=(512, 512, 512), dropout: float = 0.0, n_curves: int = 1):
        super().__init__()
        self.n_curves, self.n_out = n_curves, n_out
        self.net = mlp(n_features, hidden, n_curves * n_out, dropout)

    def forward(self, x, raw=None):
        return self.net(x).view(len(x), self.n_curves, self.n_out)
