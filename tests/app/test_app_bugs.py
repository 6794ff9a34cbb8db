"""Issue 17, app side: each case reproduces a bug found by trying the app (B4, B6, B7, B16, B17, page items)."""

from __future__ import annotations

import errno
import math

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from test_app_api import DEFAULT_SAMPLING, _estimate_args, _still_answers, _write_video


def test_plan_says_the_run_would_refuse_too_many_frames(studio, tmp_path):
    """B7: asking for 100 frames showed "100 frames will be used" and a cost, while the run refused over 64.
    Since issue 16 the run takes them (the long-video V2C, quoted as such) and refuses above 600, as the plan says."""
    rng = np.random.default_rng(0)
    video = _write_video(tmp_path / "long.mp4", rng.integers(0, 255, (100, 32, 48, 3), dtype=np.uint8))
    plan = studio.client().predict([handle_file(str(video))], "Number of frames", 100, 1, api_name="/estimate_plan")
    assert "**100 frames** will be used" in plan and "long-video V2C" in plan, plan
    video = _write_video(tmp_path / "longer.mp4", rng.integers(0, 255, (650, 32, 48, 3), dtype=np.uint8))
    plan = studio.client().predict([handle_file(str(video))], "All frames", 16, 1, api_name="/estimate_plan")
    assert "will be used" not in plan and "Would be refused" in plan and "limit of 600 frames" in plan, plan


def test_implausible_known_intrinsics_are_refused_like_the_cli(studio, clip):
    """B6: fx = fy = 1e-6 px was accepted and reported as "focal 0.0 px"; the CLI refuses it (one validator)."""
    client = studio.client()
    with pytest.raises(AppError, match=r"fx = 1e-06 px gives a 180 deg field of view"):
        client.predict(**_estimate_args([clip[0]], known_K=(1e-6, 1e-6, 192.0, 128.0)), api_name="/estimate_cameras")
    with pytest.raises(AppError, match=r"fx must be a number of pixels"):
        client.predict(**_estimate_args([clip[0]], known_K=(None, 300.0, 192.0, 128.0)), api_name="/estimate_cameras")
    _still_answers(client)


def test_a_video_uploaded_with_an_image_is_refused(studio, clip, tmp_path):
    """B17: the video was dropped without a word and the message named an internal folder."""
    import cv2

    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.zeros((64, 96, 3), np.uint8))
    client = studio.client()
    for api in ("/estimate_plan", "/estimate_cameras"):
        args = ([handle_file(str(clip[0])), handle_file(str(image))], DEFAULT_SAMPLING, 16, 1)
        with pytest.raises(AppError, match="either one video or several images of one scene, not both") as err:
            if api == "/estimate_plan":
                client.predict(*args, api_name=api)
            else:
                client.predict(**_estimate_args([clip[0], image]), api_name=api)
        assert "jog3r-studio" not in str(err.value) and "images-0" not in str(err.value)
    _still_answers(client)


def test_points_kept_nan_or_out_of_range_is_refused(studio, clip):
    """B17: a NaN confidence threshold slipped through. (gradio_client cannot send NaN in JSON, a raw request can:
    the handler's own check is called here.)"""
    import gradio as gr

    from app.tabs.estimate import _check_keep_percent

    for bad in (math.nan, math.inf, 0, -5, 250, "lots"):
        with pytest.raises(gr.Error, match="percentage between 1 and 100"):
            _check_keep_percent(bad)
    assert _check_keep_percent(60) == 60.0
    for bad in (0, 250):  # through the API, Gradio's own slider bounds answer first
        with pytest.raises(AppError, match="minimum value 1|maximum value 100|between 1 and 100"):
            studio.client().predict(**_estimate_args([clip[0]], conf=bad), api_name="/estimate_cameras")


def test_failed_job_leaves_nothing_and_a_new_job_replaces_the_last_results(studio, clip, monkeypatch):
    """B4: a job failing on a full disk left its partial folder (filling the disk for everyone until the session
    ended); B16: every run's results piled up in the session until it ended."""
    import jog3r.jobs.export as v2c_job  # the export job (called by the Estimate tab's V2C job) writes them

    client = studio.client()
    args = _estimate_args([clip[0]], sampling="Number of frames", count=2, matches="none")
    client.predict(**args, api_name="/estimate_cameras")
    session = studio.runtime.session(client.session_hash)
    first = sorted(p.name for p in session.folder.iterdir())
    assert first == ["v2c-001"], first

    real_export = v2c_job.export_all

    def export_then_disk_full(recon, out, **kwargs):
        real_export(recon, out, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(v2c_job, "export_all", export_then_disk_full)
    with pytest.raises(AppError, match="disk is full") as err:
        client.predict(**args, api_name="/estimate_cameras")
    assert "Traceback" not in str(err.value)
    assert list(session.folder.iterdir()) == []  # the earlier results and the failed run's files are gone
    monkeypatch.setattr(v2c_job, "export_all", real_export)
    _still_answers(client)


def test_jobs_are_refused_with_a_message_over_the_disk_quota(tmp_path, free_port):
    """B16: no quota: 4 x 150 MB uploads and every session's results were kept. Now a job is refused, with a
    message, while the app's files are over --disk-quota-mb."""
    from gradio_client import Client

    from app.runtime import Runtime
    from app.ui import build_demo, launch

    runtime = Runtime(None, "cpu", viewer=None, tmp_root=tmp_path, disk_quota_mb=1)  # the model is never needed
    other = runtime.session("another user")
    (other.new_folder("v2c") / "big.bin").write_bytes(b"\0" * (2 * 2**20))
    demo = build_demo(runtime)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        video = _write_video(tmp_path / "v.mp4", np.zeros((4, 32, 48, 3), np.uint8))
        with pytest.raises(AppError, match=r"disk space is full \(\d+ MB of 1 MB"):
            Client(url, verbose=False).predict(**_estimate_args([video]), api_name="/estimate_cameras")
        assert not runtime.loaded
        assert demo.delete_cache is not None and demo.delete_cache[1] <= 1800  # uploads go after 30 minutes
    finally:
        demo.close()
        runtime.close()


def test_estimate_tab_has_clickable_examples(studio):
    """Page: the repository's own RealEstate10K clips, with their ground-truth cameras, one click away."""
    config = studio.demo.get_config_file()
    datasets = [c for c in config["components"] if c.get("type") == "dataset"]
    samples = [s for d in datasets for s in d["props"].get("samples", [])]
    text = str(samples)
    assert "0bf152ef84195293" in text and ".mp4" in text and ".txt" in text, text[:500]
