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
    for option in ("--host", "--port", "--weights", "--device", "--dtype", "--viser-port", "--max-upload-mb",
                   "--disk-quota-mb"):
        assert option in result.stdout
    assert "127.0.0.1" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda:7"], "--device: device 'cuda:7' asked for"),  # B9: no such GPU here (or no CUDA at all)
    (["--device", "garbage"], "--device: device 'garbage' is not a torch device"),
    (["--dtype", "bfloat16"], "--dtype bfloat16 needs a GPU --device"),  # B15: the option exists, as in the CLI
    (["--max-upload-mb", "-1"], "--max-upload-mb must be a positive number of megabytes, got -1"),  # B17
    (["--disk-quota-mb", "0"], "--disk-quota-mb must be a positive number"),  # B16
])
def test_bad_options_exit_with_one_line(tmp_path, free_port, args, message):
    result = _run([*args, "--port", str(free_port())], tmp_path, timeout=60)
    assert result.returncode != 0
    assert f"error: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "cannot load the model" not in result.stderr, result.stderr


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


def _start_app(tmp_path, free_port, *extra, env=None):
    """``python -m app`` in ``tmp_path`` on free ports; returns ``(process, url)`` once the page answers."""
    port, viser_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--viser-port", str(viser_port), *extra],
        cwd=tmp_path, env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
            assert time.time() < deadline, "the app did not come up"
            time.sleep(1)


def test_sigterm_stops_the_training_run_and_removes_the_temp_folder(tmp_path, free_port):
    """B2: ``kill -TERM`` of the app (what systemd, docker stop and kill send) ends a training run it started
    (its whole process group) and deletes the app's temporary folder, exactly as Ctrl-C does."""
    import os
    import re

    if not (REPO / "assets" / "jog3r-tiny").is_dir():
        pytest.skip("the embedded default model is not there yet")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc, url = _start_app(tmp_path, free_port, env=dict(_env(), TMPDIR=str(tmp)))
    pid = None
    try:
        assert [p.name for p in tmp.glob("jog3r-studio-*")], "the app's temp folder is not under TMPDIR"
        from gradio_client import Client

        _, status, _ = Client(url, verbose=False).predict(
            "Generator only (L_gen)", "synthetic", 100_000, 1, 2e-4, str(tmp_path / "run"), False, 2, 32, 32,
            "constant", api_name="/train_start",
        )
        pid = int(re.search(r"pid (\d+)", status).group(1))
        os.killpg(pid, 0)  # running
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert "Traceback" not in output, output
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the training run {pid} outlived the app")
        assert not list(tmp.glob("jog3r-studio-*")), "the app's temp folder was left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
