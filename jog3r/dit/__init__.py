"""STAGE 2: latents ``[B, C, F, h, w]`` + caption tokens ``[B, 1, L, Dy]`` -> noise prediction + STDiT tokens.

:class:`~jog3r.dit.stdit.STDiT` is OpenSora v1.0's video DiT with feature taps after any block (the JOG3R
paper's ``b^n``); :mod:`jog3r.dit.layers` holds its generic blocks. Its attention and MLP are the
package's shared blocks in :mod:`jog3r.nn` (also used by :mod:`jog3r.recon`).
"""

from jog3r.dit.stdit import STDiT, STDiTBlock, STDiTConfig, load_opensora_state_dict

__all__ = [
    "STDiT",
    "STDiTBlock",
    "STDiTConfig",
    "load_opensora_state_dict",
]
