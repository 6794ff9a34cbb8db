"""jog3r.jobs.generate and jog3r.jobs.score_consistency: the T2V / T2V+C and MEt3R jobs shared by the app and the
CLI (``jog3r t2v``, ``jog3r t2vc``, ``jog3r met3r``)."""

from __future__ import annotations

import json

import pytest

from jog3r.jobs import BACKBONES, generate, score_consistency
from jog3r.pipeline import JOG3RPipeline


def test_generate_and_score_consistency_reports(micro_model_dir, tmp_path):
    pipe = JOG3RPipeline.from_pretrained(micro_model_dir)
    report = generate(pipe, "a kitchen", steps=2, estimate_cameras=True, cascade=True, export_dir=tmp_path / "t")
    assert report.steps == 2 and report.video_path == tmp_path / "t" / "video.mp4" and report.video_path.is_file()
    record = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert record["steps"] == 2 and set(record["self_consistency_deg"]) == {"rot_deg", "transl_deg"}
    assert (tmp_path / "t" / "cascade_v2c" / "transforms.json").is_file()
    assert {"export", "total"} <= set(report.timings) and report.as_table()[0][0] == "frames"

    only = generate(pipe, "a kitchen", steps=2, export_dir=tmp_path / "v", video_only=True)
    assert only.reconstruction is None and sorted(p.name for p in (tmp_path / "v").iterdir()) == ["video.mp4"]
    assert "feature_timestep" not in only.record()
    with pytest.raises(ValueError, match="unknown sampler"):
        generate(pipe, "a kitchen", sampler="euler")

    seen = []
    met = score_consistency(pipe, report.video_path, backbone="rgb", export_dir=tmp_path / "m",
                            progress=lambda f, what: seen.append(what))
    assert seen == ["reading video", "MEt3R of video"]
    assert met.error_maps == tmp_path / "m" / "met3r_error_maps.mp4" and met.error_maps.stat().st_size > 0
    saved = json.loads((tmp_path / "m" / "met3r.json").read_text())
    assert saved == met.record() and saved["backbone"] == met.backbone
    assert len(saved["per_frame"]) == met.video.num_frames - 1 and met.as_table()[0][0] == "MEt3R"
    assert "dinov2" in BACKBONES
    with pytest.raises(ValueError, match="needs a local folder"):
        score_consistency(pipe, report.video_path, backbone="dinov2")
