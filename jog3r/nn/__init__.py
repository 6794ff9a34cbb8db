"""Neural-network building blocks shared by the STDiT (:mod:`jog3r.dit`) and the DUSt3R decoder (:mod:`jog3r.recon`).

* :mod:`jog3r.nn.attention` - the package's one SDPA attention (:func:`~jog3r.nn.attention.attention`,
  :class:`~jog3r.nn.attention.SelfAttention` with a rotary hook, :class:`~jog3r.nn.attention.MultiHeadCrossAttention`).
* :mod:`jog3r.nn.mlp` - timm's ``Mlp`` (``fc1``, GELU, ``fc2``).

Neither ``dit`` nor ``recon`` imports the other; both import these. This package imports nothing else of ``jog3r``.
"""

from jog3r.nn.attention import MultiHeadCrossAttention, RotaryFn, SelfAttention, attention
from jog3r.nn.mlp import Mlp

__all__ = ["attention", "RotaryFn", "SelfAttention", "MultiHeadCrossAttention", "Mlp"]
