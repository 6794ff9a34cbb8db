"""``python -m app``: start JOG3R Studio (Gradio page + viser 3D viewer) on the embedded default model.

Examples::

    python -m app                                   # http://127.0.0.1:7860, viewer on :8080
    python -m app --weights runs/tiny/final --device cuda
    python -m app --host 0.0.0.0 --port 7861        # reachable from the network: mind who can reach it
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: before gradio is imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from jog3r.checks import parse_device  # noqa: E402

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
    """torch device: cpu, cuda, cuda:1, mps (checked before the model loads)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights dtype of the denoiser on a GPU, as `jog3r --dtype` (heads and alignment always run in float32)."""
    viser_port: int = 8080
    """Port of the 3D viewer shown inside the page (the next free one is used if taken)."""
    max_upload_mb: int = 200
    """Largest accepted upload, in megabytes."""
    disk_quota_mb: int = 4000
    """Most megabytes the app's uploads and results may take on disk; new jobs are refused, with a message,
    beyond it (uploads and results older than 30 minutes are deleted every 5 minutes)."""


def check_args(args: AppArgs) -> None:
    """Refuse options that cannot work, before anything loads (one ``error:`` line each, no traceback).

    Raises:
        ValueError: an unusable ``--device`` (:func:`jog3r.checks.parse_device`: garbage, CUDA or MPS not
            present), a non-float32 ``--dtype`` on the CPU, or a non-positive ``--max-upload-mb`` or
            ``--disk-quota-mb``, or a port outside 1..65535.
    """
    try:
        device = parse_device(args.device)
    except ValueError as exc:
        raise ValueError(f"--device: {exc}") from None
    if args.dtype != "float32" and device.type == "cpu":
        raise ValueError(f"--dtype {args.dtype} needs a GPU --device (the CPU runs float32)")
    for name, value in (("--max-upload-mb", args.max_upload_mb), ("--disk-quota-mb", args.disk_quota_mb)):
        if not value > 0:
            raise ValueError(f"{name} must be a positive number of megabytes, got {value}")
    for name, value in (("--port", args.port), ("--viser-port", args.viser_port)):
        if not 0 < value < 65536:
            raise ValueError(f"{name} must be a TCP port in 1..65535, got {value}")


def _stop_like_ctrl_c(signum: int, _frame) -> None:
    """SIGTERM / SIGHUP handler: raise ``KeyboardInterrupt`` in the main thread, so ``kill``, ``docker stop`` and
    systemd end the app the way Ctrl-C does (Gradio closes its server, then :meth:`Runtime.close` stops the
    training run's process group and deletes the temporary folder)."""
    logger.info("received %s: shutting down", signal.Signals(signum).name)
    raise KeyboardInterrupt


def main(args: AppArgs | None = None) -> None:
    """Load the model once, start the viewer and serve the page until interrupted (Ctrl-C, SIGTERM, SIGHUP)."""
    args = args or tyro.cli(AppArgs)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_like_ctrl_c)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "websockets"):  # one line per HTTP request / viewer connection otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        check_args(args)
        runtime = Runtime(args.weights, args.device, dtype=args.dtype, viewer=ViewerHub(args.host, args.viser_port),
                          disk_quota_mb=args.disk_quota_mb)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    try:
        runtime.load()
    except (FileNotFoundError, ValueError) as exc:
        runtime.close()
        sys.exit(f"error: cannot load the model: {exc}")
    except KeyboardInterrupt:
        runtime.close()
        sys.exit(130)
    try:
        runtime.viewer.start()
        launch(build_demo(runtime), host=args.host, port=args.port, max_upload_mb=args.max_upload_mb)
    except KeyboardInterrupt:  # before Gradio's own loop took over (start-up)
        pass
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
