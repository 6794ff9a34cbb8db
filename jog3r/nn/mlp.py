"""The timm ``Mlp`` shared by the STDiT (:mod:`jog3r.dit`, GELU-tanh) and the DUSt3R decoder (:mod:`jog3r.recon`,
exact GELU). Source: timm ``layers/mlp.py`` as used by OpenSora v1.0 and CroCo (REFERENCE.md A.3 and B.1).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn


class Mlp(nn.Module):
    """timm ``Mlp``: ``fc2(act(fc1(x)))`` with state-dict keys ``fc1`` and ``fc2`` (dropout 0, as OpenSora).

    Args:
        in_features: input width.
        hidden_features: width of ``fc1``'s output.
        out_features: output width (default ``in_features``).
        approximate: GELU variant, ``"tanh"`` (OpenSora ``approx_gelu``) or ``"none"`` (timm's default,
            DUSt3R).
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int | None = None,
        approximate: Literal["tanh", "none"] = "tanh",
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate=approximate)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP to the last axis: ``[..., in_features] -> [..., out_features]``."""
        return self.fc2(self.act(self.fc1(x)))


__all__ = ["Mlp"]
