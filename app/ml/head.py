"""The classification head trained on top of backbone features."""

from __future__ import annotations

import torch
from torch import nn


class Head(nn.Module):
    """Teachable Machine's head: Dense(hidden) + ReLU + Dense(K), with optional dropout on the hidden
    units (on the 1280 inputs, drawing the mask alone took 37 % of the training time)."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 100, dropout: float = 0.0):
        super().__init__()
        self.in_dim, self.num_classes, self.hidden, self.dropout = in_dim, num_classes, hidden, dropout
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def arch(self) -> dict:
        return {"in_dim": self.in_dim, "num_classes": self.num_classes, "hidden": self.hidden,
                "dropout": self.dropout}

    @classmethod
    def from_arch(cls, arch: dict) -> Head:
        return cls(arch["in_dim"], arch["num_classes"], arch["hidden"], arch.get("dropout", 0.0))
