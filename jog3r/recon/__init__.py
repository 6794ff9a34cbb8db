"""Stage 3: STDiT tokens ``[B, F, S, D]`` -> pairwise point maps (:class:`jog3r.types.PairwisePointmaps`).

Modules, bottom-up:

* :mod:`~jog3r.recon.pairs` - which frame pairs (edges ``[P, 2]``) are decoded (paper: ``(0, f)``).
* :mod:`~jog3r.recon.layers` - CroCo/DUSt3R blocks: RoPE2D (base 100), cross-attention with
  ``projq/projk/projv``, ``DecoderBlock``, and the self-attention-only ``JointBlock``.
* :mod:`~jog3r.recon.adapter` - token positions and per-edge gathering of the video tokens.
* :mod:`~jog3r.recon.head` - DUSt3R's linear head (``proj`` + pixel shuffle) and the one ``postprocess`` with
  every output activation (``pts = xyz/d * expm1(d)``, ``conf = 1 + exp(x)``), run in fp32.
* :mod:`~jog3r.recon.decoder` - :class:`~jog3r.recon.decoder.PointmapDecoder`: ``decoder_embed``, the
  two-branch (``dec_blocks``/``dec_blocks2``) or joint-3D decoder, ``dec_norm``, ``downstream_head1/2``.
  :class:`jog3r.model.JOG3R` extends it with the STDiT.
"""
