"""Training and evaluation data: synthetic posed clips, real-data loaders, point-map annotation, latent cache.

``PosedClip`` (frames + cameras + optional depth and caption, see :mod:`jog3r.types`) is what every loader and the
synthetic generator return:

* :mod:`jog3r.data.synth` - ray-cast RealEstate10K-like rooms/houses: ``SynthConfig``, ``generate_clip``,
  ``SynthClipStream``, ``write_dataset`` (and ``python -m jog3r.data.synth``);
* :mod:`jog3r.data.datasets` - RealEstate10K folders, nerfstudio/DL3DV ``transforms.json``, COLMAP text models;
* :mod:`jog3r.data.sampling` - the paper's 16-frame stride/reverse sampling and the map-style ``ClipDataset``;
* :mod:`jog3r.data.annotate` - point maps in the first frame's camera from depth (GT or a local estimator);
* :mod:`jog3r.data.cache` - safetensors cache of VAE latents and caption embeddings keyed by encoder name.
"""

from jog3r.data.annotate import DepthEstimator, annotate_clip, pointmaps_in_first
from jog3r.data.cache import LatentCache
from jog3r.data.datasets import collate_clips, load_colmap, load_re10k_clip, load_transforms_json
from jog3r.data.sampling import ClipDataset, choose_window, relative_to_first
from jog3r.data.synth import SynthClipStream, SynthConfig, generate_clip, write_dataset

__all__ = [
    "ClipDataset", "DepthEstimator", "LatentCache", "SynthClipStream", "SynthConfig", "annotate_clip",
    "choose_window", "collate_clips", "generate_clip", "load_colmap", "load_re10k_clip", "load_transforms_json",
    "pointmaps_in_first", "relative_to_first", "write_dataset",
]
