"""The app through its API, as gradio_client sees it: V2C with ground truth, T2V, MEt3R, and every bad input."""

from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

ENDPOINTS = {
    "/generate", "/estimate_plan", "/estimate_cameras", "/consistency",
    "/train_preview", "/train_start", "/train_status", "/train_stop", "/load_weights", "/load_default_weights",
}
DEFAULT_SAMPLING = "Model default (evenly spaced)"


def _estimate_args(files, gt=None, conf=60, sampling=DEFAULT_SAMPLING, count=16, stride=1, known_K=None,
                   matches="sift"):
    fx, fy, cx, cy = known_K or (None, None, None, None)
    return dict(
        files=[handle_file(str(f)) for f in files],
        sampling=sampling, count=count, stride=stride,
        use_K=known_K is not None, fx=fx, fy=fy, cx=cx, cy=cy,
        gt_file=handle_file(str(gt)) if gt else None, keep_percent=conf, matches=matches,
    )


def _path(value) -> Path:
    """Local path of a file/video output as gradio_client returns it (a path, or a FileData dict)."""
    if isinstance(value, dict):
        value = value["video"] if "video" in value else value
        value = value["path"] if isinstance(value, dict) else value
    return Path(value)


def _still_answers(client):
    """A cheap call that must work after any failure."""
    preview = client.predict(
        "Joint: L_gen + λ·L_rec (JOG3R)", "synthetic", 5, 1, 2e-4, "/tmp/jog3r-never-run", False, None, None, None, "constant",
        api_name="/train_preview",
    )
    assert "-m jog3r.train" in preview


def _write_video(path: Path, frames: np.ndarray, fps: float = 8.0) -> Path:
    import imageio.v3 as iio

    iio.imwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1)
    return path


def test_every_action_has_a_public_endpoint(studio):
    api = studio.client().view_api(print_info=False, return_format="dict")
    assert ENDPOINTS <= set(api["named_endpoints"]), set(api["named_endpoints"])


def test_v2c_on_a_real_clip_with_ground_truth(studio, clip):
    video, gt = clip
    client = studio.client()
    plan = client.predict(
        [handle_file(str(video))], DEFAULT_SAMPLING, 16, 1, api_name="/estimate_plan"
    )
    assert "frames** will be used" in plan and " s** and " in plan and "MB" in plan

    summary, metrics, trajectory, rot_plot, trans_plot, bundle, gallery, loss, result = client.predict(
        **_estimate_args([video], gt, matches="none"), api_name="/estimate_cameras"
    )
    num = result["num_frames"]
    assert num >= 2
    cam2world = np.asarray(result["cam2world"])
    assert cam2world.shape == (num, 4, 4)
    np.testing.assert_allclose(cam2world[:, 3], np.tile([0, 0, 0, 1], (num, 1)), atol=1e-5)
    for key in ("RRA@5", "RTA@5", "mAA@30"):
        assert 0.0 <= result["metrics"][key] <= 100.0
        assert key in metrics
    assert all(p is not None for p in (trajectory, rot_plot, trans_plot, loss))

    bundle_path = _path(bundle)
    with zipfile.ZipFile(bundle_path) as zf:
        names = zf.namelist()
    assert any(n.endswith("transforms.json") for n in names), names
    assert any(n.endswith(".ply") for n in names), names
    assert any(n.endswith(".glb") for n in names), names
    assert gallery, "no depth/confidence images"
    assert result["method"] == "JOG3R V2C (paper)" and result["matches"] is None

    # the same clip with the default, correspondences: reported in the summary and the result
    summary, *_, result = client.predict(**_estimate_args([video], gt), api_name="/estimate_cameras")
    assert result["matches"]["status"] == "aligned" and result["matches"]["matches"] > 0
    assert result["matches"]["match_size"][0] > result["image_size"][0]  # matched on the source-resolution frames
    assert "point maps + correspondences" in summary and result["matches"]["cloud_reprojection_px"] < 5
    assert 0.0 <= result["metrics"]["mAA@30"] <= 100.0

    # without ground truth the per-frame error plots say what they need instead of staying blank
    _, _, _, rot_plot, trans_plot, *_ = client.predict(**_estimate_args([video], None), api_name="/estimate_cameras")
    assert "ground-truth cameras" in str(rot_plot) and "ground-truth cameras" in str(trans_plot)


def test_t2v_returns_a_video_and_cameras(studio):
    client = studio.client()
    video, summary, plot, consistency = client.predict(
        "a slow walk through a bright living room", 0, "DDIM", 2, 7.0, True, True, api_name="/generate"
    )
    path = _path(video)
    assert path.exists() and path.suffix == ".mp4" and path.stat().st_size > 0
    assert plot is not None
    assert isinstance(consistency, dict) and consistency


def test_met3r_returns_score_and_error_maps(studio, clip):
    client = studio.client()
    summary, plot_a, plot_b, maps_a, maps_b = client.predict(
        handle_file(str(clip[0])), None, "RGB (no learned features)", "", api_name="/consistency"
    )
    assert "`rgb`" in summary
    path = _path(maps_a)
    assert path.exists() and path.stat().st_size > 0
    assert plot_a is not None and maps_b is None and plot_b is None


@pytest.mark.parametrize("prompt, message", [("", "empty"), ("   ", "empty"), ("x" * 2000, "2000 characters")])
def test_bad_prompts_get_a_message(studio, prompt, message):
    client = studio.client()
    with pytest.raises(AppError, match=message):
        client.predict(prompt, 0, "DDIM", 2, 7.0, False, False, api_name="/generate")
    _still_answers(client)


def test_non_video_uploads_get_a_message(studio, tmp_path):
    client = studio.client()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    with pytest.raises(AppError, match="(?i)invalid file type"):
        client.predict(**_estimate_args([notes]), api_name="/estimate_cameras")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"this is not an mp4 file" * 100)
    with pytest.raises(AppError):
        client.predict(**_estimate_args([fake]), api_name="/estimate_cameras")
    with pytest.raises(AppError):
        client.predict([handle_file(str(fake))], DEFAULT_SAMPLING, 16, 1, api_name="/estimate_plan")
    _still_answers(client)


def test_one_frame_video_gets_a_message(studio, tmp_path):
    client = studio.client()
    one = _write_video(tmp_path / "one.mp4", np.full((1, 64, 96, 3), 128, np.uint8))
    with pytest.raises(AppError, match="(?i)frame"):
        client.predict(**_estimate_args([one]), api_name="/estimate_cameras")
    with pytest.raises(AppError, match="(?i)minimum value 2|at least 2"):
        client.predict(**_estimate_args([one], sampling="Number of frames", count=1), api_name="/estimate_cameras")
    _still_answers(client)


def test_long_and_4k_videos_are_sampled_automatically(studio, tmp_path):
    client = studio.client()
    rng = np.random.default_rng(0)
    long = _write_video(tmp_path / "long.mp4", rng.integers(0, 255, (1000, 32, 48, 3), dtype=np.uint8))
    plan = client.predict([handle_file(str(long))], DEFAULT_SAMPLING, 16, 1, api_name="/estimate_plan")
    frames = int(plan.split("**")[1].split()[0])
    assert 2 <= frames <= 64, plan
    big = _write_video(tmp_path / "big.mp4", rng.integers(0, 255, (3, 2160, 3840, 3), dtype=np.uint8))
    plan = client.predict([handle_file(str(big))], DEFAULT_SAMPLING, 16, 1, api_name="/estimate_plan")
    assert "frames** will be used" in plan
    _still_answers(client)


def test_wrong_weights_folder_keeps_the_current_model(studio, tmp_path):
    client = studio.client()
    before = studio.runtime.pipeline
    for folder in ("/no/such/folder", str(tmp_path)):
        with pytest.raises(AppError):
            client.predict(folder, api_name="/load_weights")
    assert studio.runtime.pipeline is before
    _still_answers(client)


def test_two_users_at_once(studio, clip):
    """Two sessions submit model jobs together: the queue runs them one after the other and both finish."""
    video, gt = clip
    clients = [studio.client(), studio.client()]
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(clients[0].predict, **_estimate_args([video], gt, sampling="Number of frames", count=4),
                        api_name="/estimate_cameras"),
            pool.submit(clients[1].predict, handle_file(str(video)), None, "RGB (no learned features)", "",
                        api_name="/consistency"),
        ]
        estimate, consistency = (f.result(timeout=600) for f in futures)
    assert estimate[-1]["num_frames"] == 4
    assert "`rgb`" in consistency[0]
    json.dumps(estimate[-1])  # the JSON result is plain data


def test_bad_ground_truth_file_gets_a_message_before_running(studio, clip, tmp_path):
    client = studio.client()
    garbage = tmp_path / "cameras.txt"
    garbage.write_text("https://example.org\n1 2 3\n")
    with pytest.raises(AppError, match="cameras.txt"):
        client.predict(**_estimate_args([clip[0]], garbage), api_name="/estimate_cameras")
    short = tmp_path / "short.txt"
    short.write_text("\n".join(clip[1].read_text().splitlines()[:5]) + "\n")  # URL + 4 cameras for 16 frames
    with pytest.raises(AppError, match="4 cameras"):
        client.predict(**_estimate_args([clip[0]], short), api_name="/estimate_cameras")
    _still_answers(client)


def test_uploads_over_the_limit_are_refused(tmp_path, free_port):
    """``--max-upload-mb`` reaches Gradio's ``max_file_size``: a bigger upload is refused before any handler runs."""
    from gradio_client import Client

    from app.runtime import Runtime
    from app.ui import build_demo, launch

    runtime = Runtime(None, "cpu", viewer=None, tmp_root=tmp_path)  # the model is never needed here
    demo = build_demo(runtime)
    _, url, _ = launch(demo, port=free_port(), max_upload_mb=1, prevent_thread_lock=True, quiet=True)
    try:
        big = tmp_path / "big.mp4"
        big.write_bytes(b"\0" * (2 * 1024 * 1024))
        with pytest.raises(Exception, match="(?i)413|too large|exceeds|maximum"):
            Client(url, verbose=False).predict(
                [handle_file(str(big))], DEFAULT_SAMPLING, 16, 1, api_name="/estimate_plan"
            )
        assert not runtime.loaded  # refused before the handler ran
    finally:
        demo.close()
        runtime.close()


def test_known_intrinsics_are_carried_to_the_model_size_and_kept(studio, clip):
    """fx fy cx cy typed in pixels of the upload (RE10K: 384x256) come back, rescaled, as the cameras' K."""
    import torch

    from jog3r.geometry.camera import adjust_intrinsics

    video, gt = clip
    fx_n, fy_n, cx_n, cy_n = (float(v) for v in gt.read_text().splitlines()[1].split()[1:5])
    typed = (fx_n * 384, fy_n * 256, cx_n * 384, cy_n * 256)
    result = studio.client().predict(
        **_estimate_args([video], sampling="Number of frames", count=4, known_K=typed), api_name="/estimate_cameras"
    )[-1]
    K_typed = torch.tensor([[typed[0], 0, typed[2]], [0, typed[1], typed[3]], [0, 0, 1]], dtype=torch.float64)
    expected = adjust_intrinsics(K_typed, (256, 384), tuple(result["image_size"]))
    np.testing.assert_allclose(np.asarray(result["K"]), np.broadcast_to(expected.numpy(), (4, 3, 3)), rtol=1e-4)


def test_default_v2c_of_a_real_clip_shows_the_exported_cloud(studio, clip, viewer_client):
    """#15 item 4: a real clip's default V2C run (no cut given) draws a non-empty cloud in the session's viewer,
    and exactly the points of the PLY in the zip (one cut for both)."""
    import io

    import trimesh

    _open_client, _wait_for = viewer_client
    video, _ = clip
    client = studio.client()
    args = _estimate_args([video])
    del args["keep_percent"]  # the page's default
    bundle = client.predict(**args, api_name="/estimate_cameras")[5]
    token = studio.runtime.session(client.session_hash).token
    with _open_client(studio.runtime.viewer, token):
        assert _wait_for(lambda: len(studio.runtime.viewer.handles(token)) == 1)
        shown = np.asarray(studio.runtime.viewer.handles(token)[0].points.points)
    with zipfile.ZipFile(_path(bundle)) as zf:
        ply = next(n for n in zf.namelist() if n.endswith("pointcloud.ply"))
        cloud = trimesh.load(io.BytesIO(zf.read(ply)), file_type="ply")
    assert len(shown) > 0.5 * 16 * 128 * 192
    np.testing.assert_array_equal(shown, np.asarray(cloud.vertices, dtype=np.float32))
