"""Camera files in and out: other tools' formats <-> :class:`CameraSet` in the package convention.

``file -> CameraSet(cam2world [F,4,4] OpenCV, K [F,3,3] pixels, image_size (H, W), names, timestamps,
extra)``. Every reader converts to the convention of :mod:`jog3r.geometry.camera` (OpenCV axes,
camera-to-world, ``K`` in pixels, pixel centres at ``+0.5``); every writer converts back. Each module's
docstring states its file's convention in full:

* :mod:`jog3r.io.re10k` - RealEstate10K ``.txt`` (normalised intrinsics, world-to-camera 3x4, microseconds).
* :mod:`jog3r.io.nerfstudio` - nerfstudio / DL3DV / instant-ngp ``transforms.json`` (OpenGL camera-to-world).
* :mod:`jog3r.io.colmap` - COLMAP text model (``QW QX QY QZ`` world-to-camera; converted to XYZW only here).
* :mod:`jog3r.io.tum` - TUM trajectory ``timestamp tx ty tz qx qy qz qw`` (camera-to-world).
* :mod:`jog3r.io.scene` - point clouds and scenes: binary PLY, GLB (points + camera frustums), the confidence cut
  shared with the viewer.
* :mod:`jog3r.io.video` - video and image-folder input (PyAV), frame sampling, resize + centre crop, MP4 output.
  Import it explicitly (``from jog3r.io.video import read_video``); it pulls in PyAV and OpenCV.
* :mod:`jog3r.io.export_bundle` - every format at once for a ``Reconstruction`` (plus PLY/GLB/depth), zipped.
  Import it explicitly (``from jog3r.io.export_bundle import export_all``); it pulls in trimesh and PyAV.
"""

from jog3r.io.colmap import ColmapPoints, read_colmap_points3d, read_colmap_text, write_colmap_text
from jog3r.io.nerfstudio import read_transforms_json, write_transforms_json
from jog3r.io.re10k import read_re10k, write_re10k
from jog3r.io.tum import read_tum, write_tum
from jog3r.io.types import CameraSet

__all__ = [
    "CameraSet",
    "ColmapPoints",
    "read_colmap_points3d",
    "read_colmap_text",
    "read_re10k",
    "read_transforms_json",
    "read_tum",
    "write_colmap_text",
    "write_re10k",
    "write_transforms_json",
    "write_tum",
]
