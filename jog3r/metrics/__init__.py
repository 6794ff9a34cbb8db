"""Metrics: camera-pose errors and accuracies (:mod:`jog3r.metrics.pose`), 3D consistency (MEt3R)."""
