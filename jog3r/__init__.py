"""JOG3R: one model for text-to-video (T2V), video-to-cameras (V2C) and both at once (T2V+C).

JOG3R (Huang et al., "Towards 3D-Consistent Video Generators") stitches OpenSora 1.0's video diffusion
transformer (STDiT) to DUSt3R's decoders and point-map head and fine-tunes both jointly,
``L_total = L_gen + lambda * L_rec`` (paper Sec. 3.2).

Data flow (each arrow is one subpackage; the ``jog3r.types`` dataclasses travel along the arrows)::

    prompt ──encode.text──► caption tokens ─┐
    video  ──encode.vae───► Latents ────────┴─► dit.STDiT ──► DiTFeatures (tokens after block b^n, small t)
                                                                   │
                                   recon (adapter + two-branch decoder + linear head), pairs (1 -> f)
                                                                   ▼
                                                          PairwisePointmaps (pts3d, conf, pts3d_in_other_view)
                                                                   │  align (global alignment + L_fl, L_transl)
                                                                   ▼
                                                          Reconstruction (cam2world, K, depth, pts3d, conf)
                                                                   │  viz / io / metrics
                                                                   ▼
                                                  viser viewer, GLB/PLY, COLMAP/RE10K/nerfstudio, RRA@5, MEt3R

Axis alphabet used in every shape string of the package:

    B  batch                    F  video frames             C  channels
    H W  image height / width in pixels                     h w  latent (VAE) grid height / width
    S  tokens per frame (patch grid h_p * w_p)              N  tokens per video (F * S)
    D  hidden width             L  caption tokens           P  frame pairs (edges)

``T`` is never used for frames (it collides with the diffusion timestep ``t`` and translations).
Camera and pixel conventions are stated once, in :mod:`jog3r.geometry.camera`.
"""

__version__ = "0.1.0"
