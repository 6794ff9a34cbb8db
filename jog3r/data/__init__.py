"""Training and evaluation data: synthetic posed clips, real-data loaders, point-map annotation, latent cache.

``PosedClip`` (frames + cameras + optional depth and caption, see :mod:`jog3r.types`) is what every loader and the
synthetic generator (:mod:`jog3r.data.synth`) return.
"""
