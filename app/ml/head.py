"""The classification head trained on top of backbone features."""

from __future__ import annotations

import math

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


class HeadEnsemble(nn.Module):
    """The heads of a cross-validation, one per fold, answering together.

    The output is the log of their mean probability, so a softmax on top (as everywhere a head is
    used) gives the mean of the members' probabilities: the same answer on the server and in downloads.
    """

    def __init__(self, members: list[Head]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.in_dim, self.num_classes = members[0].in_dim, members[0].num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(m(x), dim=1) for m in self.members])
        return torch.logsumexp(logp, dim=0) - math.log(len(self.members))

    def arch(self) -> dict:
        return {"ensemble": [m.arch() for m in self.members]}


def head_from_arch(arch: dict) -> nn.Module:
    if "ensemble" in arch:
        return HeadEnsemble([Head.from_arch(a) for a in arch["ensemble"]])
    return Head.from_arch(arch)
