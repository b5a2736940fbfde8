"""VIBE's temporal encoder: a 2-layer unidirectional GRU over per-frame features."""
from __future__ import annotations

import torch
from torch import nn

FEATURE_DIM = 2048
HIDDEN_DIM = 1024
NUM_LAYERS = 2


class TemporalEncoder(nn.Module):
    """GRU(2048→1024, 2 layers, time-major) → ReLU → Linear(1024→2048) → + input.

    Keys: ``gru.weight_ih_l{0,1}``, ``gru.weight_hh_l{0,1}``, ``gru.bias_{ih,hh}_l{0,1}``,
    ``linear.weight``, ``linear.bias`` (PyTorch gate order: reset, update, new).
    """

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(FEATURE_DIM, HIDDEN_DIM, num_layers=NUM_LAYERS, bidirectional=False)
        self.linear = nn.Linear(HIDDEN_DIM, FEATURE_DIM)
        self.relu = nn.ReLU()

    def forward(
        self, feats: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch of sequences.

        Args:
            feats: (N, T, 2048) per-frame backbone features.
            hidden: (2, N, 1024) GRU state carried over from the previous chunk of the same
                sequences, or None for a zero start (VIBE's behaviour at a sequence start).
        Returns:
            y: (N, T, 2048) temporally encoded features; hidden: (2, N, 1024) final GRU state.
        """
        x = feats.permute(1, 0, 2)
        if hidden is not None:
            hidden = hidden.to(dtype=x.dtype)
        out, hidden = self.gru(x, hidden)
        y = self.linear(self.relu(out)) + x
        return y.permute(1, 0, 2), hidden
