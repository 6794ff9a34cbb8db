"""Synthetic RealEstate10K-like training data: posed static-scene clips with exact depth and captions.

Scenes (:mod:`.layout`) are rooms and houses built from analytic primitives (:mod:`.scene`, :mod:`.rooms`,
:mod:`.furniture`, :mod:`.furnish`) textured with procedural patterns and crops of real photographs
(:mod:`.textures`, :mod:`.materials`), ray-cast in torch (:mod:`.render`) along walkthrough-like camera paths
(:mod:`.paths`) and captioned (:mod:`.captions`). :func:`generate_clip` makes one clip, :class:`SynthClipStream`
streams them, :func:`write_dataset` writes the RealEstate10K folder layout, and ``python -m jog3r.data.synth``
is the command line.
"""

from jog3r.data.synth.generate import SynthClipStream, SynthConfig, generate_clip
from jog3r.data.synth.writer import contact_sheet, write_clip, write_dataset

__all__ = ["SynthConfig", "SynthClipStream", "generate_clip", "write_dataset", "write_clip", "contact_sheet"]
