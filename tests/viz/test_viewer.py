"""Tests for jog3r.viz.viewer / jog3r.viz.controls on a real viser server (and headless Chromium)."""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import roma
import torch
import viser

from jog3r.io.scene import select_points as export_select
from jog3r.types import Reconstruction
from jog3r.viz.colors import time_colors, to_uint8
from jog3r.viz.controls import ViewerControls, budget_text, legend_html, playback_fps, set_initial_view
from jog3r.viz.viewer import (
    MAX_FRUSTUMS,
    add_error_maps,
    add_ground_truth,
    add_reconstruction,
    align_ground_truth,
    cam2world_to_wxyz_position,
    default_view,
    frustum_fov_aspect,
    frustum_frames,
    restore_images,
    scene_extent,
    select_points,
    wxyz_position_to_cam2world,
)

CHROMIUM = "/usr/bin/chromium"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV cam2world looking from ``centre`` at ``target``, world ``-y`` up."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross(z, [0.0, -1.0, 0.0])
    x /= np.linalg.norm(x)
    out = np.eye(4)
    out[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    out[:3, 3] = centre
    return out


_ROOM = (np.array([-4.0, -2.0, -4.0]), np.array([4.0, 1.0, 3.0]))  # OpenCV world: y down, floor at y = 1
_BOXES = (  # (low corner, high corner, colour): two boxes standing on the floor
    (np.array([-1.2, 0.0, 0.4]), np.array([-0.2, 1.0, 1.4]), np.array([0.93, 0.45, 0.2])),
    (np.array([0.4, 0.4, 0.0]), np.array([1.0, 1.0, 0.6]), np.array([0.2, 0.65, 0.6])),
)
# Colours of the x walls, the floor/ceiling and the z walls.
_WALL_COLOURS = np.array([[0.85, 0.8, 0.7], [0.7, 0.78, 0.88], [0.8, 0.8, 0.8]])


def _ray_cast(origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter and colour of the first hit of rays ``origin + t dirs`` in a room holding two boxes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        exits = np.where(dirs > 0, (_ROOM[1] - origin) / dirs, (_ROOM[0] - origin) / dirs)
        exits[~np.isfinite(exits)] = np.inf
        t = exits.min(-1)
        colour = _WALL_COLOURS[exits.argmin(-1)]
        for low, high, box_colour in _BOXES:
            t1, t2 = (low - origin) / dirs, (high - origin) / dirs
            t_in = np.nanmax(np.minimum(t1, t2), -1)
            t_out = np.nanmin(np.maximum(t1, t2), -1)
            hit = (t_in <= t_out) & (t_in > 0) & (t_in < t)
            t, colour = np.where(hit, t_in, t), np.where(hit[..., None], box_colour, colour)
    pts = origin + t[..., None] * dirs
    check = (np.floor(pts * 2.0 + 1e-4).astype(int).sum(-1) % 2)[..., None]
    return t, np.clip(colour * (0.8 + 0.2 * check), 0, 1)


def room_reconstruction(num_frames: int = 8, height: int = 48, width: int = 64) -> Reconstruction:
    """Cameras on an arc looking at two boxes on a room's floor, ray-cast exactly (a perfect recon)."""
    focal = 0.8 * width
    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays_cam = np.stack([(u - K[0, 2]) / focal, (v - K[1, 2]) / focal, np.ones_like(u)], -1)
    target = np.array([0.0, 0.5, 0.8])
    c2ws, depths, pts_all, colours = [], [], [], []
    for f in range(num_frames):
        angle = math.radians(-55.0 + 80.0 * f / max(num_frames - 1, 1))
        height_offset = -1.3 + 0.1 * math.sin(4 * angle)
        centre = target + np.array([3.0 * math.sin(angle), height_offset, -3.0 * math.cos(angle)])
        c2w = _look_at(centre, target)
        dirs = rays_cam @ c2w[:3, :3].T
        t, colour = _ray_cast(centre, dirs)
        c2ws.append(c2w), depths.append(t), colours.append(colour)  # rays have z = 1: t is the z-depth
        pts_all.append(centre + t[..., None] * dirs)
    pts = np.stack(pts_all)
    conf = 1.0 + 4.0 * np.exp(-np.linalg.norm(pts - target, axis=-1))  # higher near the boxes
    return Reconstruction(
        cam2world=torch.tensor(np.stack(c2ws), dtype=torch.float32),
        K=torch.tensor(np.stack([K] * num_frames), dtype=torch.float32),
        depth=torch.tensor(np.stack(depths), dtype=torch.float32),
        pts3d=torch.tensor(pts, dtype=torch.float32),
        conf=torch.tensor(conf, dtype=torch.float32),
        colors=torch.tensor(np.stack(colours), dtype=torch.float32),
    )


def _num_kept(recon: Reconstruction, percent: float) -> int:
    """How many points a cut keeping ``percent`` % keeps: every one at or above the lower quantile (ties kept)."""
    conf = recon.conf.numpy().ravel()
    return int((conf >= np.quantile(conf, 1 - percent / 100, method="lower")).sum())


@pytest.fixture
def server():
    srv = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    yield srv
    srv.stop()


def test_wxyz_round_trip_matches_roma():
    quat = roma.random_unitquat(6, dtype=torch.float64)
    c2w = roma.RigidUnitQuat(quat, torch.randn(6, 3, dtype=torch.float64)).to_homogeneous()
    wxyz, position = cam2world_to_wxyz_position(c2w)
    np.testing.assert_allclose(np.linalg.norm(wxyz, axis=-1), 1.0, atol=1e-12)
    # viser's scalar-first quaternion is roma's XYZW rolled by one.
    rot = roma.unitquat_to_rotmat(torch.as_tensor(np.roll(wxyz, -1, axis=-1)))
    np.testing.assert_allclose(rot.numpy(), c2w[:, :3, :3].numpy(), atol=1e-10)
    np.testing.assert_allclose(wxyz_position_to_cam2world(wxyz, position), c2w.numpy(), atol=1e-10)
    np.testing.assert_allclose(position, c2w[:, :3, 3].numpy())


def test_fov_and_aspect():
    K = torch.tensor([[[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]], [[50.0, 0, 32], [0, 80.0, 24], [0, 0, 1]]])
    fov, aspect = frustum_fov_aspect(K, (48, 64))
    np.testing.assert_allclose(fov[0], 2 * math.atan(24 / 100))
    np.testing.assert_allclose(aspect[0], 64 / 48)  # square pixels: W / H
    np.testing.assert_allclose(fov[1], 2 * math.atan(24 / 80))
    np.testing.assert_allclose(aspect[1], (64 / 50) / (48 / 80))  # non-square pixels: tan(hfov/2)/tan(vfov/2)


def test_select_points_threshold_subsample_and_colours():
    recon = room_reconstruction(num_frames=3, height=12, width=16)
    pts, rgb = select_points(recon, keep_percent=None)
    assert pts.shape == (3 * 12 * 16, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(pts, recon.pts3d.reshape(-1, 3).numpy())
    high = float(recon.conf.median())
    kept, _ = select_points(recon, conf_threshold=high)
    assert len(kept) == int((recon.conf >= high).sum())
    default, _ = select_points(recon)  # the exports' cut: the 60 % most confident
    assert len(default) == _num_kept(recon, 60) and len(default) >= 0.6 * recon.conf.numel()
    sub, _ = select_points(recon, max_points=50)
    again, _ = select_points(recon, max_points=50)
    assert len(sub) == 50 and np.array_equal(sub, again)  # seeded
    _, by_time = select_points(recon, color_by="time")
    np.testing.assert_array_equal(by_time[0], to_uint8(time_colors(3)[0]))
    np.testing.assert_array_equal(by_time[-1], to_uint8(time_colors(3)[-1]))
    with pytest.raises(ValueError, match="color_by"):
        select_points(recon, color_by="depth")  # type: ignore[arg-type]


def test_add_reconstruction_nodes_poses_and_updates(server):
    recon = room_reconstruction(num_frames=8, height=24, width=32)
    handles = add_reconstruction(server.scene, recon, conf_threshold=1.0, color_by="time")
    assert handles.points.name == "/recon/points"
    assert [h.name for h in handles.frustums] == [f"/recon/cameras/frame_{f:03d}" for f in range(8)]
    assert handles.trajectory is not None and handles.trajectory.name == "/recon/trajectory"
    fov, aspect = frustum_fov_aspect(recon.K, recon.image_size)
    ramp = to_uint8(time_colors(8))
    for f, frustum in enumerate(handles.frustums):
        c2w = wxyz_position_to_cam2world(np.asarray(frustum.wxyz), np.asarray(frustum.position))
        np.testing.assert_allclose(c2w, recon.cam2world[f].numpy(), atol=1e-5)
        assert frustum.fov == pytest.approx(fov[f]) and frustum.aspect == pytest.approx(32 / 24)
        assert tuple(frustum.color) == tuple(int(c) for c in ramp[f])
        assert frustum.image is not None and frustum.image.shape == (24, 32, 3)
    assert aspect[0] == pytest.approx(32 / 24)
    segs = np.asarray(handles.trajectory.points)
    np.testing.assert_allclose(segs[:, 0], recon.cam2world[:-1, :3, 3].numpy(), atol=1e-6)
    np.testing.assert_allclose(segs[:, 1], recon.cam2world[1:, :3, 3].numpy(), atol=1e-6)
    assert handles.frustum_scale == pytest.approx(0.04 * scene_extent(recon))
    # In-place updates keep the node and change its content.
    total = handles.update_points(conf_threshold=0.0)
    fewer = handles.update_points(conf_threshold=float(recon.conf.quantile(0.5)))
    assert total == 8 * 24 * 32 and 0 < fewer < total and len(handles.points.points) == fewer
    assert handles.update_points(keep_percent=25) == _num_kept(recon, 25)  # a share, no absolute cut any more
    one = handles.update_points(frame=2)  # only frame 2's points
    assert 0 < one < _num_kept(recon, 25)
    np.testing.assert_allclose(handles.points.points,
                               select_points(recon, keep_percent=25, frame=2)[0])
    handles.highlight_frame(3)
    assert handles.frustums[3].scale > handles.frustums[2].scale
    handles.remove()


def test_ground_truth_alignment_recovers_a_similarity(server):
    recon = room_reconstruction(num_frames=6, height=12, width=16)
    # GT = an arbitrary similarity of the prediction, with a STRAIGHT trajectory component kept.
    rot = roma.rotvec_to_rotmat(torch.tensor([0.3, -1.1, 0.7], dtype=torch.float64))
    gt = recon.cam2world.double().clone()
    gt[:, :3, :3] = rot @ gt[:, :3, :3]
    gt[:, :3, 3] = 3.7 * gt[:, :3, 3] @ rot.T + torch.tensor([5.0, -2.0, 1.0], dtype=torch.float64)
    aligned, scale = align_ground_truth(gt, recon.cam2world)
    assert scale == pytest.approx(1 / 3.7, rel=1e-5)
    np.testing.assert_allclose(aligned.numpy(), recon.cam2world.numpy(), atol=1e-4)
    handles = add_ground_truth(
        server.scene, gt, recon.K, recon.image_size, recon.cam2world, frustum_scale=0.2
    )
    assert handles.frustums[4].name == "/gt/cameras/frame_004" and handles.trajectory.name == "/gt/trajectory"
    position = np.asarray(handles.frustums[4].position)
    np.testing.assert_allclose(position, recon.cam2world[4, :3, 3].numpy(), atol=1e-4)
    handles.set_visible(False)
    assert not any(h.visible for h in handles.frustums)


def test_collinear_trajectory_rotation_is_recovered():
    # Forward walk along +z: centres alone cannot fix the roll about the walking direction.
    c2w = torch.eye(4, dtype=torch.float64).repeat(5, 1, 1)
    c2w[:, 2, 3] = torch.arange(5.0)
    roll = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 0.8], dtype=torch.float64))
    gt = c2w.clone()
    gt[:, :3, :3] = roll @ gt[:, :3, :3]
    gt[:, :3, 3] = gt[:, :3, 3] @ roll.T
    aligned, _ = align_ground_truth(gt, c2w)
    np.testing.assert_allclose(aligned.numpy(), c2w.numpy(), atol=1e-5)


def test_real_re10k_cameras_align_and_frustums(server, data_dir):
    """Real RealEstate10K cameras (a forward walkthrough, non-square pixels at 384x256)."""
    from jog3r.io.re10k import read_re10k

    cams = read_re10k(data_dir / "realestate10k/clips16_384x256/0bf152ef84195293.txt", (256, 384))
    fx_n, fy_n = cams.extra["intrinsics_normalised"][:, 0], cams.extra["intrinsics_normalised"][:, 1]
    fov, aspect = frustum_fov_aspect(cams.K, (256, 384))
    np.testing.assert_allclose(aspect, np.asarray(fy_n / fx_n), rtol=1e-5)  # (W / fx) / (H / fy)
    np.testing.assert_allclose(fov, 2 * np.arctan(0.5 / np.asarray(fy_n)), rtol=1e-5)
    # A "prediction" = the real cameras in another frame and scale; GT must land back on it.
    rot = roma.rotvec_to_rotmat(torch.tensor([0.4, 0.2, -0.9]))
    pred = cams.cam2world.clone()
    pred[:, :3, :3] = rot @ pred[:, :3, :3]
    pred[:, :3, 3] = 0.25 * pred[:, :3, 3] @ rot.T + torch.tensor([1.0, 2.0, 3.0])
    handles = add_ground_truth(server.scene, cams.cam2world, cams.K, (256, 384), pred)
    np.testing.assert_allclose(handles.cam2world_aligned.numpy(), pred.numpy(), atol=1e-4)
    frustum = handles.frustums[9]
    c2w = wxyz_position_to_cam2world(np.asarray(frustum.wxyz), np.asarray(frustum.position))
    np.testing.assert_allclose(c2w, pred[9].numpy(), atol=1e-4)


def test_error_maps_replace_and_restore_images(server):
    recon = room_reconstruction(num_frames=4, height=12, width=16)
    handles = add_reconstruction(server.scene, recon)
    err = torch.rand(3, 12, 16)
    masks = torch.ones(3, 12, 16, dtype=torch.bool)
    masks[:, :, :4] = False
    images = add_error_maps(handles, err, masks)
    assert len(images) == 3 and handles.frustums[1].image is images[0]
    np.testing.assert_array_equal(images[0][0, 0], [128, 128, 128])  # invisible -> grey
    assert handles.frustums[0].image is handles.images[0]  # frame 0 keeps its image
    restore_images(handles)
    assert handles.frustums[2].image is handles.images[2]
    with pytest.raises(ValueError):
        add_error_maps(handles, err, masks, frames=[1, 2])


def test_viewer_controls_drive_the_scene(server):
    recon = room_reconstruction(num_frames=5, height=12, width=16)
    handles = add_reconstruction(server.scene, recon)
    gt = add_ground_truth(server.scene, recon.cam2world, recon.K, recon.image_size, recon.cam2world)
    controls = ViewerControls(server, handles, ground_truth=gt, fps=50.0)
    assert controls.keep_percent.value == 60
    controls.keep_percent.value = 10
    assert len(handles.points.points) == _num_kept(recon, 10)
    size = handles.points.point_size
    assert controls.point_size.value == 1.0  # a factor of the drawn size, not world units (unreadable labels)
    controls.point_size.value = 2.5
    assert handles.points.point_size == pytest.approx(2.5 * size)
    controls.frame.value = 4
    assert handles.frustums[3].thickness > handles.frustums[0].thickness
    assert [controls.step() for _ in range(3)] == [5, 1, 2]
    controls.show_gt.value = False
    assert not gt.frustums[0].visible
    controls.play.value = True
    deadline = time.time() + 5.0
    while controls.frame.value == 2 and time.time() < deadline:
        time.sleep(0.02)
    controls.play.value = False
    assert controls.frame.value != 2  # playback advanced the slider
    controls.close()
    assert "#" in legend_html(5) and legend_html(5).count("border-radius") == 5
    assert legend_html(100).count("border-radius") <= 33


def test_play_and_the_frame_slider_draw_that_frames_points(server):
    """Play (and "Points of: the current frame") draw the slider's frame's points, not the whole video's."""
    recon = room_reconstruction(num_frames=4, height=12, width=16)
    handles = add_reconstruction(server.scene, recon, keep_percent=None)
    controls = ViewerControls(server, handles, fps=0.5)  # the first step comes 2 s after Play
    assert len(handles.points.points) == 4 * 12 * 16
    controls.frame.value = 3
    assert len(handles.points.points) == 4 * 12 * 16  # stepping alone keeps every frame's points
    controls.play.value = True
    np.testing.assert_allclose(handles.points.points, recon.pts3d[2].reshape(-1, 3).numpy())
    controls.play.value = False
    assert len(handles.points.points) == 4 * 12 * 16
    controls.points_of.value = "the current frame"
    controls.frame.value = 1
    np.testing.assert_allclose(handles.points.points, recon.pts3d[0].reshape(-1, 3).numpy())
    controls.close()


def test_frustum_frames_keep_every_kth_and_the_last():
    assert frustum_frames(16) == list(range(16)) and frustum_frames(1) == [0]
    frames = frustum_frames(600)
    assert frames[0] == 0 and frames[-1] == 599 and len(frames) <= MAX_FRUSTUMS + 1
    assert set(np.diff(frames[:-1])) == {20}  # ceil(600 / 30)
    assert frustum_frames(98, 48) == list(range(0, 98, 3)) + [97]
    with pytest.raises(ValueError, match="max_frustums"):
        frustum_frames(10, 0)


def test_a_long_reconstruction_keeps_the_point_budget_and_few_small_frustums(server):
    """Issue 16: hundreds of frames -> at most MAX_FRUSTUMS frustums (smaller), the trajectory through every
    frame, at most ``max_points`` points sampled over all frames (said in the panel), and the slider's frame
    drawn even when it has no frustum of its own."""
    num = 240
    recon = room_reconstruction(num_frames=num, height=12, width=16)
    short = add_reconstruction(server.scene, room_reconstruction(num_frames=16, height=12, width=16), prefix="/s")
    handles = add_reconstruction(server.scene, recon, max_points=5000)
    assert handles.frustum_frames == frustum_frames(num) and len(handles.frustums) == len(handles.frustum_frames)
    assert len(handles.frustums) <= MAX_FRUSTUMS + 1
    assert handles.frustum_scale < 0.7 * short.frustum_scale  # 0.04 extent * sqrt(16 / 31), and the gap cap
    gaps = np.linalg.norm(np.diff(recon.cam2world[handles.frustum_frames, :3, 3].numpy(), axis=0), axis=1)
    assert handles.frustum_scale <= 0.5 * np.median(gaps) + 1e-6  # drawn frustums do not overlap
    assert np.asarray(handles.trajectory.points).shape == (num - 1, 2, 3)  # every frame on the line
    for f, frustum in zip(handles.frustum_frames, handles.frustums):
        c2w = wxyz_position_to_cam2world(np.asarray(frustum.wxyz), np.asarray(frustum.position))
        np.testing.assert_allclose(c2w, recon.cam2world[f].numpy(), atol=1e-5)
    # the budget: 5000 of the 60 % kept points, spread over the frames like the exports' sample
    kept = _num_kept(recon, 60)
    assert len(handles.points.points) == 5000 == handles.num_drawn and handles.num_selected == kept
    np.testing.assert_array_equal(handles.points.points, select_points(recon, max_points=5000)[0])
    counts = np.bincount(export_select(recon, keep_percent=60, max_points=5000)["index"] // (12 * 16),
                         minlength=num)
    assert (counts > 0).mean() > 0.9, counts  # the sample covers (nearly) every frame
    controls = ViewerControls(server, handles)
    assert controls.fps == playback_fps(num) == 12.0
    text = budget_text(handles)
    assert f"5,000 of {kept:,} kept points drawn (budget 5,000" in text and f"of {num} frames have a frustum" in text
    assert controls.budget.content == text
    # a frame without a frustum: the "current" frustum at its pose, with its image; hidden again on a drawn one
    controls.frame.value = 8  # frame 7 (0-based): not a multiple of 8
    assert 7 not in handles.frustum_frames
    current = handles._current
    assert current is not None and current.visible and current.name == "/recon/cameras/current"
    c2w = wxyz_position_to_cam2world(np.asarray(current.wxyz), np.asarray(current.position))
    np.testing.assert_allclose(c2w, recon.cam2world[7].numpy(), atol=1e-5)
    assert current.image is handles.images[7]
    controls.points_of.value = "the current frame"  # one frame's points: under the budget, all drawn
    assert handles.num_drawn == handles.num_selected == len(select_points(recon, frame=7)[0]) > 0
    assert controls.budget.content.startswith(f"{handles.num_drawn:,} of {handles.num_drawn:,} kept points")
    controls.frame.value = 1
    assert not current.visible and handles.frustum_of(0).thickness > handles.frustum_of(8).thickness
    controls.close()
    handles.remove()


def test_default_view_looks_at_the_scene():
    recon = room_reconstruction(num_frames=4, height=12, width=16)
    position, look_at, up = default_view(recon)
    np.testing.assert_allclose(up, -recon.cam2world[0, :3, 1].numpy(), atol=1e-6)
    forward = recon.cam2world[0, :3, 2].numpy()
    assert np.dot(look_at - position, forward) > 0  # looking roughly the way camera 0 looks
    drawn, _ = select_points(recon)  # the orbit turns about the centre of the drawn cloud
    np.testing.assert_allclose(look_at, np.median(drawn.astype(np.float64), axis=0), atol=1e-6)


@pytest.mark.browser
def test_viewer_renders_in_headless_chromium(tmp_path):
    """Render per-client scenes in Chromium and check the screenshot shows frustums, points and ground truth.

    With ``JOG3R_UPDATE_DOCS_IMAGES=1`` the screenshot is also copied to ``docs/images/viewer.png``.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    recon = room_reconstruction(num_frames=8, height=48, width=64)
    # "Ground truth" = the true cameras seen by another method: jittered, in another frame and scale.
    jitter = roma.RigidUnitQuat(
        roma.rotvec_to_unitquat(0.02 * torch.randn(8, 3)), 0.04 * torch.randn(8, 3)
    ).to_homogeneous()
    gt = 2.0 * (jitter @ recon.cam2world)
    gt[:, 3, 3] = 1.0
    gt[:, :3, :3] = (jitter @ recon.cam2world)[:, :3, :3]
    srv = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    ready = []

    @srv.on_client_connect
    def _(client: viser.ClientHandle) -> None:  # one scene per browser session
        handles = add_reconstruction(client.scene, recon, conf_threshold=1.0)
        gt_handles = add_ground_truth(
            client.scene, gt, recon.K, recon.image_size, recon.cam2world, frustum_scale=handles.frustum_scale
        )
        ViewerControls(client, handles, ground_truth=gt_handles)
        set_initial_view(client, recon)
        ready.append(handles)

    shot = tmp_path / "viewer.png"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"],
            )
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"http://127.0.0.1:{srv.get_port()}/")
            deadline = time.time() + 60
            while not ready and time.time() < deadline:
                page.wait_for_timeout(200)
            assert ready, "the browser never connected to the viser server"
            page.wait_for_timeout(4000)
            close = page.locator(".mantine-Notification-closeButton")  # "software WebGL" notice
            if close.count():
                close.first.click()
                page.wait_for_timeout(500)
            page.screenshot(path=str(shot))
            browser.close()
    finally:
        srv.stop()
    import imageio.v3 as iio

    if os.environ.get("JOG3R_UPDATE_DOCS_IMAGES"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS_IMAGES / "viewer.png")
    canvas = iio.imread(shot)[:, :850, :3].astype(int)  # the 3D view left of the GUI panel
    r, g, b = canvas[..., 0], canvas[..., 1], canvas[..., 2]
    assert ((r > 180) & (g < 90) & (b < 90)).sum() > 20, "no red (first frame) frustum lines"
    assert ((r > 110) & (g < 80) & (b > 170)).sum() > 20, "no purple (last frame) frustum lines"
    assert ((r > 200) & (g > 80) & (g < 150) & (b < 90)).sum() > 2000, "the orange box points are not drawn"
    assert (canvas.max(-1) < 60).sum() > 30, "no near-black ground-truth cameras"


def test_default_view_of_a_walk_looks_down_on_the_whole_path():
    """A path of many depths (a long video walking through rooms): the eye is above the path and every camera is in
    view; the first view (behind camera 0, inside the cloud) saw a wall of points with the path off to one side."""
    num, h, w = 40, 6, 8
    s = torch.linspace(0, 1, num, dtype=torch.float64)
    yaw = 2.0 * s  # a curve through ~115 deg, walking forward, ~12 m at 1 m depth
    c2w = torch.eye(4, dtype=torch.float64).repeat(num, 1, 1)
    c2w[:, :3, :3] = roma.rotvec_to_rotmat(torch.stack((torch.zeros_like(s), yaw, torch.zeros_like(s)), -1))
    c2w[:, 0, 3], c2w[:, 2, 3] = 6 * torch.sin(yaw), 6 * (1 - torch.cos(yaw)) * 0.5 + 6 * s
    K = torch.tensor([[6.0, 0, 4], [0, 6.0, 3], [0, 0, 1]]).expand(num, 3, 3)
    depth = torch.ones(num, h, w)
    from jog3r.geometry.camera import depth_to_world_points

    recon = Reconstruction(cam2world=c2w.float(), K=K, depth=depth, pts3d=depth_to_world_points(depth, K, c2w.float()),
                           conf=torch.ones(num, h, w), colors=torch.rand(num, h, w, 3))
    position, look_at, up = default_view(recon)
    centres = c2w[:, :3, 3].numpy()
    np.testing.assert_allclose(look_at, centres.mean(0), atol=1e-6)
    np.testing.assert_allclose(up, [0.0, -1.0, 0.0], atol=1e-6)  # the cameras' mean up (OpenCV y down)
    assert np.dot(position - look_at, up) > 0  # above the path
    axis = (look_at - position) / np.linalg.norm(look_at - position)
    rays = (centres - position) / np.linalg.norm(centres - position, axis=1, keepdims=True)
    assert float(np.degrees(np.arccos(np.clip(rays @ axis, -1, 1))).max()) < 25.0  # all in a 50-deg view
