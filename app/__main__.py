"""``python -m app``: start JOG3R Studio (Gradio page + viser 3D viewer) on the embedded default model.

Examples::

    python -m app                                   # http://127.0.0.1:7860, viewer on :8080
    python -m app --weights runs/tiny/final --device cuda
    python -m app --host 0.0.0.0 --port 7861        # reachable from the network: mind who can reach it
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: before gradio is imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.runtime import Runtime  # noqa: E402
from app.ui import build_demo, launch  # noqa: E402
from app.viewer import ViewerHub  # noqa: E402

logger = logging.getLogger("app")


@dataclass
class AppArgs:
    """JOG3R Studio: text -> video, video -> cameras, MEt3R and training, in the browser."""

    host: str = "127.0.0.1"
    """Interface to listen on. The default serves this machine only; 0.0.0.0 exposes the app to the network."""
    port: int = 7860
    """Port of the web page."""
    weights: Path | None = None
    """Model folder (a training run's final/ or checkpoints/step_*); default: the embedded assets/jog3r-tiny."""
    device: str = "cpu"
    """torch device: cpu, cuda, cuda:1, ..."""
    viser_port: int = 8080
    """Port of the 3D viewer shown inside the page (the next free one is used if taken)."""
    max_upload_mb: int = 200
    """Largest accepted upload, in megabytes."""


def main(args: AppArgs | None = None) -> None:
    """Load the model once, start the viewer and serve the page until interrupted."""
    args = args or tyro.cli(AppArgs)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "websockets"):  # one line per HTTP request / viewer connection otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    runtime = Runtime(args.weights, args.device, viewer=ViewerHub(args.host, args.viser_port))
    try:
        runtime.load()
    except (FileNotFoundError, ValueError) as exc:
        runtime.close()
        sys.exit(f"error: cannot load the model: {exc}")
    try:
        runtime.viewer.start()
        launch(build_demo(runtime), host=args.host, port=args.port, max_upload_mb=args.max_upload_mb)
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
