"""Bad inputs to the global alignment: a clear error naming the problem, or a documented fallback - never NaN."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from jog3r.align import ALIGN_PRESETS, AlignConfig, InitMethod, fit
from jog3r.align.synthetic import make_scene
from jog3r.metrics.pose import pose_metrics
from jog3r.types import PairwisePointmaps


@pytest.fixture
def scene():
    return make_scene(4, 12, 16, seed=0)


def _replace(pm: PairwisePointmaps, **changes) -> PairwisePointmaps:
    return dataclasses.replace(pm, **changes)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_confidences_giving_zero_weight_everywhere_raise(scene, value):
    pm = scene.pointmaps
    bad = _replace(pm, conf=torch.full_like(pm.conf, value), conf_in_other_view=torch.full_like(pm.conf, value))
    with pytest.raises(ValueError, match="confidence"):
        fit(bad, None, ALIGN_PRESETS["fast"])


def test_negative_confidence_raises(scene):
    conf = scene.pointmaps.conf.clone()
    conf[0, 0, 0, 0] = -1.0
    with pytest.raises(ValueError, match=">= 0"):
        fit(_replace(scene.pointmaps, conf=conf), None, ALIGN_PRESETS["fast"])


def test_confidences_below_threshold_fall_back_to_median_mask(scene, caplog):
    pm = scene.pointmaps
    low = _replace(pm, conf=torch.full_like(pm.conf, 2.0), conf_in_other_view=torch.full_like(pm.conf, 2.0))
    with caplog.at_level(logging.INFO, logger="jog3r.align.init"):
        rec, hist = fit(low, None, ALIGN_PRESETS["fast"])
    assert "min_conf_thr" in caplog.text
    assert torch.isfinite(rec.pts3d).all() and all(map(torch.isfinite, map(torch.tensor, hist["loss"])))
    m = pose_metrics(rec.cam2world, scene.cam2world)
    assert m["Rot. err."] < 1.0 and m["Trans. err."] < 5.0


def test_nan_pixels_get_zero_weight(scene, caplog):
    pts = scene.pointmaps.pts3d.clone()
    pts[0, :, :3, :4] = float("nan")
    conf_j = scene.pointmaps.conf_in_other_view.clone()
    conf_j[0, 1, 5, 5] = float("inf")
    with caplog.at_level(logging.WARNING, logger="jog3r.align.aligner"):
        rec, hist = fit(_replace(scene.pointmaps, pts3d=pts, conf_in_other_view=conf_j), None, ALIGN_PRESETS["fast"])
    assert "non-finite" in caplog.text
    assert torch.isfinite(rec.pts3d).all() and torch.isfinite(rec.cam2world).all()
    m = pose_metrics(rec.cam2world, scene.cam2world)
    assert m["Rot. err."] < 0.5 and m["Trans. err."] < 3.0


def test_edge_without_any_finite_point_is_named(scene):
    pts = scene.pointmaps.pts3d_in_other_view.clone()
    pts[0, 2] = float("nan")
    with pytest.raises(ValueError, match=r"\[\[0, 3\]\]"):
        fit(_replace(scene.pointmaps, pts3d_in_other_view=pts), None, ALIGN_PRESETS["fast"])


def test_single_frame_and_self_pairs_raise(scene):
    pm = scene.pointmaps
    empty = PairwisePointmaps(pts3d=pm.pts3d[:, :0], conf=pm.conf[:, :0], pts3d_in_other_view=pm.pts3d[:, :0],
                              conf_in_other_view=pm.conf[:, :0], edges=torch.zeros(0, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least 2 frames"):
        fit(empty, None)
    with pytest.raises(ValueError, match="itself"):
        fit(_replace(pm, edges=torch.tensor([[0, 0], [0, 2], [0, 3]])), None)


def test_unconnected_frames_raise(scene):
    pm = make_scene(4, 6, 8, graph="swin", seed=0).pointmaps  # edges (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    with pytest.raises(ValueError, match=r"disconnected.*\[\[0, 1\], \[2, 3\]\]"):
        fit(_replace(pm, edges=torch.tensor([[0, 1], [2, 3], [0, 1], [2, 3], [1, 0], [3, 2]])), None)
    with pytest.raises(ValueError, match=r"frames \[1\] appear in no edge"):
        fit(_replace(pm, edges=torch.tensor([[0, 2], [0, 3], [2, 3], [0, 2], [0, 3], [2, 3]])), None)


def test_mismatched_shapes_raise(scene):
    pm = scene.pointmaps
    with pytest.raises(ValueError, match="conf"):
        fit(_replace(pm, conf=pm.conf[..., :-1]), None)
    with pytest.raises(ValueError, match="pts3d_in_other_view"):
        fit(_replace(pm, pts3d_in_other_view=pm.pts3d_in_other_view[:, :, :-1]), None)
    with pytest.raises(ValueError, match="edges"):
        fit(_replace(pm, edges=pm.edges[:-1]), None)
    with pytest.raises(ValueError, match="batch of 1"):
        fit(_replace(pm, pts3d=pm.pts3d.expand(2, -1, -1, -1, -1), conf=pm.conf.expand(2, -1, -1, -1),
                     pts3d_in_other_view=pm.pts3d_in_other_view.expand(2, -1, -1, -1, -1),
                     conf_in_other_view=pm.conf_in_other_view.expand(2, -1, -1, -1)), None)
    with pytest.raises(ValueError, match="images"):
        fit(pm, scene.images[:, :, :-1], ALIGN_PRESETS["fast"])
    with pytest.raises(ValueError, match="K must be"):
        fit(pm, None, ALIGN_PRESETS["fast"], K=scene.K[:2])
    with pytest.raises(ValueError, match="cam2world"):
        fit(pm, None, AlignConfig(init=InitMethod.KNOWN_POSES), K=scene.K)
    with pytest.raises(ValueError, match="principal point"):
        fit(pm, None, ALIGN_PRESETS["fast"].replace(optimize_pp=True))
