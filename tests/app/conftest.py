"""Fixtures of the app tests: one in-process JOG3R Studio (embedded default model) per test worker."""

from __future__ import annotations

import os
import socket
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

    runtime = Runtime(None, "cpu", viewer=ViewerHub("127.0.0.1", 0), tmp_root=tmp_path_factory.mktemp("studio"))
    runtime.load()
    runtime.viewer.start()
    demo = build_demo(runtime)
    _, url, _ = launch(demo, host="127.0.0.1", port=_free_port(), prevent_thread_lock=True, quiet=True)
    yield Studio(url, runtime, demo)
    demo.close()
    runtime.close()
