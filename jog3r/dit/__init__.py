"""STAGE 2: latents ``[B, C, F, h, w]`` + caption tokens ``[B, 1, L, Dy]`` -> noise prediction + STDiT tokens.

:class:`~jog3r.dit.stdit.STDiT` is OpenSora v1.0's video DiT with feature taps after any block (the JOG3R
paper's ``b^n``); :mod:`jog3r.dit.layers` holds its generic blocks. :mod:`jog3r.dit.attention` is the
package's one SDPA attention (``attention``, ``SelfAttention`` with a rotary hook,
``MultiHeadCrossAttention``), shared with :mod:`jog3r.recon`.
"""

from jog3r.dit.attention import MultiHeadCrossAttention, SelfAttention, attention
from jog3r.dit.stdit import STDiT, STDiTBlock, STDiTConfig, load_opensora_state_dict

__all__ = [
    "attention",
    "SelfAttention",
    "MultiHeadCrossAttention",
    "STDiT",
    "STDiTBlock",
    "STDiTConfig",
    "load_opensora_state_dict",
]
