"""Stage 3: STDiT tokens ``[B, F, S, D]`` -> pairwise point maps (:class:`jog3r.types.PairwisePointmaps`)."""
