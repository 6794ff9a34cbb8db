"""Fixtures of the app tests: one in-process JOG3R Studio (embedded default model) per test worker."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DATA = Path(__file__).resolve().parents[1] / "data"
RE10K_CLIPS = DATA / "realestate10k" / "clips16_384x256"
CLIP_ID = "0bf152ef84195293"
EMBEDDED_MODEL = Path(__file__).resolve().parents[2] / "assets" / "jog3r-tiny"


def _free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port():
    """A function returning a TCP port that is free right now on 127.0.0.1."""
    return _free_port


def wait_for(cond, timeout: float = 10.0) -> bool:
    """Poll ``cond()`` every 50 ms until it is true (returns True) or ``timeout`` seconds pass (returns False)."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def open_viewer_client(hub, token: str):
    """Connect to a :class:`app.viewer.ViewerHub` as viser's browser client does from the page's iframe.

    The websocket goes to ``/session/TOKEN``; viser counts a client as connected once it reports its camera, so
    one camera message is sent, as the browser does. Returns the open websocket (a context manager).
    """
    import msgspec
    import viser
    from viser import _messages
    from websockets.sync.client import connect

    ws = connect(
        f"ws://127.0.0.1:{hub.port}/session/{token}", subprotocols=[f"viser-v{viser.__version__}"], open_timeout=10
    )
    camera = _messages.ViewerCameraMessage(
        (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, -3.0), 1.0, 0.01, 100.0, 480, 640, (0.0, 0.0, 0.0), (0.0, -1.0, 0.0)
    )
    ws.send(msgspec.msgpack.encode(camera.as_serializable_dict()))
    return ws


@pytest.fixture
def viewer_client():
    """:func:`open_viewer_client` and :func:`wait_for`, for tests that play the viewer's browser."""
    return open_viewer_client, wait_for


@dataclass
class Studio:
    """A running app: its URL, runtime and Blocks."""

    url: str
    runtime: object
    demo: object

    def client(self):
        """A new ``gradio_client`` session against the app."""
        from gradio_client import Client

        return Client(self.url, verbose=False, download_files=False)


@pytest.fixture(scope="session")
def clip() -> tuple[Path, Path]:
    """A real RealEstate10K clip (16 frames, 384x256) and its camera file."""
    return RE10K_CLIPS / f"{CLIP_ID}.mp4", RE10K_CLIPS / f"{CLIP_ID}.txt"


@pytest.fixture(scope="session")
def studio(tmp_path_factory) -> Studio:
    """JOG3R Studio on the embedded default model, served on a free port with its viser viewer."""
    if not EMBEDDED_MODEL.is_dir():
        pytest.skip("the embedded default model (assets/jog3r-tiny) is not there yet")
    from app.runtime import Runtime
    from app.ui import build_demo, launch
    from app.viewer import ViewerHub

    runtime = Runtime(None, "cpu", viewer=ViewerHub("127.0.0.1", 0), tmp_root=tmp_path_factory.mktemp("studio"),
                      unload_grace_s=2.0)
    runtime.load()
    runtime.viewer.start()
    demo = build_demo(runtime)
    _, url, _ = launch(demo, host="127.0.0.1", port=_free_port(), prevent_thread_lock=True, quiet=True)
    yield Studio(url, runtime, demo)
    demo.close()
    runtime.close()
