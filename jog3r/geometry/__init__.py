"""Cross-cutting camera and point-map math; conventions are stated once in :mod:`jog3r.geometry.camera`."""
