"""app/runtime.py without a model: sessions, their folders and viewer scenes, and refusing a wrong weights folder."""

from __future__ import annotations

import pytest

from app.runtime import Runtime
from app.viewer import ViewerHub


@pytest.fixture
def runtime(tmp_path):
    hub = ViewerHub("127.0.0.1", 0)
    hub.start()
    runtime = Runtime(None, "cpu", viewer=hub, max_sessions=2, tmp_root=tmp_path)
    yield runtime
    runtime.close()


def test_sessions_own_a_folder_and_a_viewer_scene(runtime):
    a = runtime.session("a")
    assert runtime.session("a") is a
    assert a.folder.is_dir() and a.token in runtime.viewer.tokens()
    first, second = a.new_folder("v2c"), a.new_folder("v2c")
    assert first != second and first.is_dir() and second.is_dir()
    (first / "out.txt").write_text("x")

    runtime.end_session("a")
    assert not a.folder.exists()
    assert a.token not in runtime.viewer.tokens()
    runtime.end_session("a")  # ending twice is harmless


def test_least_recently_used_session_is_closed_beyond_the_cap(runtime):
    a, b = runtime.session("a"), runtime.session("b")
    runtime.session("a")  # a is now the most recent
    c = runtime.session("c")
    assert runtime.num_sessions == 2
    assert not b.folder.exists() and b.token not in runtime.viewer.tokens()
    assert a.folder.exists() and c.folder.exists()


def test_close_removes_everything(tmp_path):
    runtime = Runtime(None, "cpu", viewer=None, tmp_root=tmp_path)
    folder = runtime.session("x").folder
    runtime.close()
    assert not folder.exists() and not runtime.root.exists()


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_wrong_weights_folder_is_refused_and_nothing_changes(runtime, tmp_path, make):
    with pytest.raises((FileNotFoundError, ValueError)):
        runtime.swap_weights(make(tmp_path))
    assert runtime.weights is None and not runtime.loaded


def test_unload_closes_the_session_only_once_its_viewer_is_gone(runtime, viewer_client):
    """Gradio also fires unload when a busy server drops a live page's heartbeat: a connected viewer keeps it."""
    _open_client, _wait_for = viewer_client
    session = runtime.session("page")
    with _open_client(runtime.viewer, session.token):
        assert _wait_for(lambda: runtime.viewer.clients(session.token))
        runtime.end_session_later("page", delay=0.1).join()
        assert runtime.session("page") is session and session.folder.exists()
    assert _wait_for(lambda: not runtime.viewer.clients(session.token))
    runtime.end_session_later("page", delay=0.1).join()
    assert not session.folder.exists() and session.token not in runtime.viewer.tokens()


def test_job_replaces_earlier_results_and_a_failed_job_leaves_nothing(runtime):
    """B16 / B4 without a model: a job deletes the session's earlier results; a failing job deletes its own."""
    session = runtime.session("a")
    with runtime.job("a"):
        (session.new_folder("v2c") / "cameras.txt").write_text("x")
    plan = session.new_folder("plan-images")  # the cost preview's folder survives other jobs
    with runtime.job("a"):
        kept = session.new_folder("v2c")
    assert sorted(p.name for p in session.folder.iterdir()) == [plan.name, kept.name]
    with pytest.raises(OSError), runtime.job("a"):
        (session.new_folder("v2c") / "partial.ply").write_bytes(b"\0" * 1000)
        raise OSError(28, "No space left on device")
    assert [p.name for p in session.folder.iterdir()] == [plan.name]
    other = runtime.session("b")
    (other.new_folder("v2c") / "big.bin").write_bytes(b"\0" * 3 * 2**20)
    runtime.disk_quota_mb = 2
    from app.runtime import DiskQuotaError

    with pytest.raises(DiskQuotaError, match=r"disk space is full \(\d+ MB of 2 MB"), runtime.job("a"):
        pass


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "bfloat16"}, "needs a GPU"), ({"dtype": "float64"}, "--dtype must be one of"),
    ({"device": "garbage"}, "not a torch device"), ({"disk_quota_mb": 0}, "positive number of megabytes"),
])
def test_runtime_refuses_settings_that_cannot_work(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Runtime(None, kwargs.pop("device", "cpu"), viewer=None, tmp_root=tmp_path, **kwargs)
