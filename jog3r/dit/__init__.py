"""STAGE 2: latents ``[B, C, F, h, w]`` + caption tokens ``[B, 1, L, Dy]`` -> noise prediction + STDiT tokens.

:mod:`jog3r.dit.layers` holds the generic blocks (and :func:`~jog3r.dit.layers.attention`, the package's one
SDPA attention, shared with :mod:`jog3r.recon`).
"""

from jog3r.dit.layers import MultiHeadCrossAttention, SelfAttention, attention

__all__ = ["attention", "SelfAttention", "MultiHeadCrossAttention"]
