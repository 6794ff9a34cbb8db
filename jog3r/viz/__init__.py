"""Visualisation: ``Reconstruction`` -> what users see (viser 3D viewer, plotly plots, shared colours).

* :mod:`jog3r.viz.colors` - red -> purple time ramp (from the leaf :mod:`jog3r.pixels`), ground-truth colour,
  turbo/viridis colormaps. (PLY / GLB files: :mod:`jog3r.io.scene`.)
* :mod:`jog3r.viz.viewer` - ``add_reconstruction(scene, recon)`` and friends for a viser scene; the only place
  that converts ``cam2world`` to viser's ``(wxyz, position)``.
* :mod:`jog3r.viz.controls` - ``ViewerControls``: the viser GUI panel (confidence, point size, frame + play,
  GT).
* :mod:`jog3r.viz.plots` - plotly figures: trajectories, alignment loss, training curves, per-frame values.

Submodules are imported explicitly (``from jog3r.viz.viewer import add_reconstruction``) so that importing the
colours does not pull in viser or plotly.
"""
