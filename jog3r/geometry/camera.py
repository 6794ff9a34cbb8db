"""Camera math, and THE place where the package's conventions are stated.

Conventions (every other module links here instead of restating them):

* **Camera axes: OpenCV** - x right, y down, z forward (the camera looks along +z). Files in other conventions
  (nerfstudio/Blender/OpenGL: x right, y up, z backward) are converted at the file boundary in :mod:`jog3r.io`.
* **Poses:** ``cam2world`` maps camera coordinates to world coordinates, ``world2cam`` is its inverse. Both are
  float32 ``[..., 4, 4]`` with bottom row ``[0, 0, 0, 1]``; points are column vectors, ``X_w = cam2world @ X_c``.
  Never bare "pose" / "extrinsic" / "RT".
* **Intrinsics:** ``K`` ``[..., 3, 3]`` in pixels, ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``; ``focal`` is in
  pixels.
* **Pixel coordinates:** pixel ``(u, v)`` (column ``u``, row ``v``, integer indices) has its **centre at the
  continuous coordinate (u + 0.5, v + 0.5)**; the image covers ``[0, W] x [0, H]``, so a centred principal
  point is ``(W / 2, H / 2)`` (the RealEstate10K ``cx = 0.5`` convention).
* **Quaternions:** XYZW (scalar last, roma's order) everywhere inside ``jog3r``; viser's ``wxyz`` appears only
  in :mod:`jog3r.viz.viewer`, COLMAP's ``QW QX QY QZ`` only in :mod:`jog3r.io`.
* **Angles:** radians inside the package; degrees only at the metric API (``RRA@5``, errors in degrees).
* **Units:** scene scale is arbitrary ("up to scale") unless a dataset says it is metric; depth is z-depth
  (distance along +z), not ray length.
"""
