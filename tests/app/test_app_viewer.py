"""The viser hub (app/viewer.py): a real ViserServer, real websocket clients, one scene per session."""

from __future__ import annotations

import pytest
import torch

from app.viewer import GroundTruth, ViewerHub
from jog3r.types import Reconstruction


def _recon(num_frames: int = 3, height: int = 8, width: int = 12):
    """A small hand-built reconstruction: cameras stepping along +x, a fronto-parallel wall at z = 2."""
    cam2world = torch.eye(4).repeat(num_frames, 1, 1)
    cam2world[:, 0, 3] = torch.arange(num_frames, dtype=torch.float32) * 0.1
    K = torch.tensor([[10.0, 0, width / 2], [0, 10.0, height / 2], [0, 0, 1]]).repeat(num_frames, 1, 1)
    v, u = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    depth = torch.full((num_frames, height, width), 2.0)
    x = (u - width / 2) / 10.0 * 2.0
    y = (v - height / 2) / 10.0 * 2.0
    pts = torch.stack([x, y, torch.full_like(x, 2.0)], -1).repeat(num_frames, 1, 1, 1)
    pts[..., 0] += cam2world[:, 0, 3].view(-1, 1, 1)
    conf = torch.linspace(1.0, 3.0, height * width).view(1, height, width).repeat(num_frames, 1, 1)
    return Reconstruction(cam2world, K, depth, pts, conf, torch.rand(num_frames, height, width, 3))


@pytest.fixture
def hub():
    hub = ViewerHub(host="127.0.0.1", port=0)
    hub.start()
    yield hub
    hub.stop()


def test_iframe_points_the_websocket_at_the_session(hub):
    token = hub.open_session()
    html = hub.iframe_html(token, page_host="localhost:7860")
    assert f"http://localhost:{hub.port}/?websocket=ws://localhost:{hub.port}/session/{token}" in html
    assert "<iframe" in html
    # Without a page host the listening host is used.
    assert f"http://127.0.0.1:{hub.port}/" in hub.iframe_html(token)


def test_clients_are_grouped_by_session_and_scenes_are_separate(hub, viewer_client):
    _open_client, _wait_for = viewer_client
    a, b = hub.open_session(), hub.open_session()
    with _open_client(hub, a), _open_client(hub, b), _open_client(hub, "not-a-session"):
        assert _wait_for(lambda: len(hub.clients(a)) == 1 and len(hub.clients(b)) == 1)
        recon = _recon()
        assert hub.show(a, recon, keep_percent=100, label="clip") == 1
        assert len(hub.handles(a)) == 1 and not hub.handles(b)
        (handles,) = hub.handles(a)
        assert len(handles.frustums) == recon.num_frames
        assert len(handles.points.points) == 3 * 8 * 12

        # The "points kept" slider re-selects points in place; NaN and 0 are refused with a message.
        assert hub.set_keep_percent(a, 50) == 1
        assert 3 * 8 * 12 // 2 <= len(handles.points.points) <= 3 * 8 * 12 // 2 + 3  # ties (3 frames) kept
        for bad in (float("nan"), 0, 101):
            with pytest.raises(ValueError, match="between 1 and 100"):
                hub.set_keep_percent(a, bad)

    # Disconnected clients are dropped from their sessions.
    assert _wait_for(lambda: not hub.clients(a) and not hub.clients(b))


def test_late_client_gets_the_current_scene(hub, viewer_client):
    _open_client, _wait_for = viewer_client
    token = hub.open_session()
    recon = _recon(4)
    gt = GroundTruth(recon.cam2world.clone(), recon.K.clone(), recon.image_size)
    assert hub.show(token, recon, ground_truth=gt) == 0  # nobody connected yet
    with _open_client(hub, token):
        assert _wait_for(lambda: len(hub.handles(token)) == 1)
        (handles,) = hub.handles(token)
        assert len(handles.frustums) == 4


def test_closing_a_session_forgets_it(hub, viewer_client):
    _open_client, _wait_for = viewer_client
    token = hub.open_session()
    with _open_client(hub, token):
        assert _wait_for(lambda: len(hub.clients(token)) == 1)
        hub.show(token, _recon())
        hub.close_session(token)
        assert hub.scene_state(token) is None and hub.clients(token) == []
        assert hub.show(token, _recon()) == 0  # a job finishing after its page closed draws nothing


def test_default_cut_shows_the_exported_point_set_on_real_range_confidences(hub, viewer_client, tmp_path):
    """#15 item 4: with confidences in the model's real range (1.0 .. 1.45, all below the old absolute 1.5 cut),
    the viewer's default draws points, and exactly the point set of the PLY export's default."""
    import numpy as np
    import trimesh

    from jog3r.io.export_bundle import export_all

    _open_client, _wait_for = viewer_client
    base = _recon(4, 16, 24)
    conf = 1.0 + 0.45 * torch.rand(base.conf.shape, generator=torch.Generator().manual_seed(0))
    recon = Reconstruction(base.cam2world, base.K, base.depth, base.pts3d, conf, base.colors)
    token = hub.open_session()
    with _open_client(hub, token):
        assert _wait_for(lambda: len(hub.clients(token)) == 1)
        hub.show(token, recon)  # the app's default cut
        (handles,) = hub.handles(token)
        shown = np.asarray(handles.points.points)
    total = recon.conf.numel()
    assert 0.3 * total < len(shown) < total
    ply = trimesh.load(export_all(recon, tmp_path / "export")["ply"])
    np.testing.assert_array_equal(shown, np.asarray(ply.vertices, dtype=np.float32))
