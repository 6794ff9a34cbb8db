"""``python -m app`` as a user starts it: options, a wrong weights folder, and a clean start/stop elsewhere."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(args, cwd, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=_env(),
    )


def _env():
    import os

    return dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")


def test_help_lists_the_options(tmp_path):
    result = _run(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--weights", "--device", "--viser-port", "--max-upload-mb"):
        assert option in result.stdout
    assert "127.0.0.1" in result.stdout


def test_wrong_weights_folder_exits_with_a_message(tmp_path, free_port):
    result = _run(["--weights", str(tmp_path / "nope"), "--port", str(free_port())], tmp_path)
    assert result.returncode != 0
    assert "cannot load the model" in result.stderr
    assert "Traceback" not in result.stderr


def test_starts_serves_and_stops_without_writing_to_the_working_directory(tmp_path, free_port):
    if not (REPO / "assets" / "jog3r-tiny").is_dir():
        pytest.skip("the embedded default model is not there yet")
    port, viser_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--viser-port", str(viser_port)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.time() < deadline, "the app did not come up"
                time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{viser_port}/", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()

        from gradio_client import Client

        preview = Client(url, verbose=False).predict(
            "Generator only (L_gen)", "synthetic", 3, 1, 2e-4, str(tmp_path / "run"), False, None, None, None, "constant",
            api_name="/train_preview",
        )
        assert "--mode gen" in preview
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert list(tmp_path.iterdir()) == [], "the app wrote into its working directory"
