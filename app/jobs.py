"""Training runs as subprocesses: validate the form, build the exact command line, run it, tail it, stop it.

The Training tab never imports :mod:`jog3r.train`; it launches ``python -m jog3r.train`` as a child process

* with its arguments as a list (no shell, so nothing in a form field is ever interpreted),
* in its own process group (``start_new_session=True``), so Stop can end the run *and* any workers it spawned,
* with its working directory set to the run's output folder, so nothing lands in the app's working directory.

The run writes ``<out>/log.jsonl`` (one JSON object per step) and checkpoints; this module reads the log
incrementally and lists the checkpoints. Console output (stdout + stderr) goes to ``<out>/console.txt`` so a
crash can be shown to the user.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TRAIN_MODES = ("joint", "frozen-rec", "gen", "rec")
"""Values of ``python -m jog3r.train --mode``."""

LR_SCHEDULES = ("constant", "cosine")
"""Values of ``python -m jog3r.train --lr-schedule``."""

SYNTHETIC_DATA = "synth"
"""Value of ``--data`` that selects the embedded synthetic data set."""

LOG_NAME = "log.jsonl"
CONSOLE_NAME = "console.txt"

MAX_STEPS = 1_000_000
MAX_BATCH_SIZE = 256
MAX_FRAMES = 64
MAX_SIDE = 2048


@dataclass(frozen=True)
class TrainRequest:
    """A validated Training-tab form: every field is safe to put on a command line.

    Attributes:
        mode: one of :data:`TRAIN_MODES`.
        data: :data:`SYNTHETIC_DATA` or the absolute path of an existing folder.
        steps: number of optimisation steps, ``1..MAX_STEPS``.
        batch_size: clips per step, ``1..MAX_BATCH_SIZE``.
        lr: learning rate, ``0 < lr < 1``.
        out_dir: absolute path of the output folder (created by the run).
        preset: model preset name passed to ``--preset``.
        resume: continue from the latest checkpoint in ``out_dir``.
        num_frames: frames per training clip (``None``: the trainer's default).
        height, width: training frame size in pixels (``None``: the preset's).
        lr_schedule: one of :data:`LR_SCHEDULES`: after the trainer's warm-up (``--warmup-steps``, 100), ``constant``
            or ``cosine`` decay to ``--min-lr`` (0) at the step count of the run's first start (kept on resume).
    """

    mode: str
    data: str
    steps: int
    batch_size: int
    lr: float
    out_dir: Path
    preset: str = "tiny"
    resume: bool = False
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    lr_schedule: str = "constant"


def _clean_path_text(text: str, what: str) -> str:
    """Strip ``text`` and reject characters that have no place in a path typed into a form."""
    text = (text or "").strip()
    if not text:
        raise ValueError(f"{what} is empty.")
    if any(ch in text for ch in ("\x00", "\n", "\r")):
        raise ValueError(f"{what} contains a control character; type a plain folder path.")
    return text


def validate_request(
    *,
    mode: str,
    data: str,
    steps: float,
    batch_size: float,
    lr: float,
    out_dir: str,
    preset: str = "tiny",
    resume: bool = False,
    num_frames: float | None = None,
    height: float | None = None,
    width: float | None = None,
    lr_schedule: str = "constant",
) -> TrainRequest:
    """Check a Training-tab form and return it as a :class:`TrainRequest`.

    Paths are resolved to absolute paths, so a value can never start with ``-`` and be read as an option.

    Args:
        mode: one of :data:`TRAIN_MODES`.
        data: ``"synth"`` (or ``"synthetic"``) for the embedded synthetic set, else an existing folder.
        steps: number of steps (a whole number).
        batch_size: batch size (a whole number).
        lr: learning rate.
        out_dir: output folder; must be new, empty, or an earlier run's folder (holding ``log.jsonl``).
        preset: model preset name (letters, digits, ``-``, ``_``, ``.``).
        resume: continue an earlier run in ``out_dir``.
        num_frames: frames per clip, ``2..MAX_FRAMES``, or ``None`` for the trainer's default.
        height, width: frame size in pixels, ``8..MAX_SIDE``, or ``None`` for the preset's (the trainer checks
            that the model's patch grid divides them).
        lr_schedule: one of :data:`LR_SCHEDULES`.

    Returns:
        The validated request.

    Raises:
        ValueError: with a message naming the field and the fix.
    """
    if mode not in TRAIN_MODES:
        raise ValueError(f"Unknown training mode {mode!r}; choose one of {', '.join(TRAIN_MODES)}.")
    if not preset or not all(ch.isalnum() or ch in "-_." for ch in preset) or preset.startswith("-"):
        raise ValueError(f"Invalid preset name {preset!r}.")

    data = _clean_path_text(data, "Data")
    if data.lower() in (SYNTHETIC_DATA, "synthetic"):
        data = SYNTHETIC_DATA
    else:
        folder = Path(data).expanduser().resolve()
        if not folder.is_dir():
            raise ValueError(f"Data folder {data!r} does not exist (or is not a folder); type 'synthetic' or a folder.")
        data = str(folder)

    for name, value, low, high in (("Steps", steps, 1, MAX_STEPS), ("Batch size", batch_size, 1, MAX_BATCH_SIZE)):
        if value is None or float(value) != int(value) or not low <= int(value) <= high:
            raise ValueError(f"{name} must be a whole number between {low} and {high}, not {value!r}.")
    optional = (("Frames per clip", num_frames, 2, MAX_FRAMES), ("Height", height, 8, MAX_SIDE),
                ("Width", width, 8, MAX_SIDE))
    for name, value, low, high in optional:
        if value is not None and (float(value) != int(value) or not low <= int(value) <= high):
            raise ValueError(f"{name} must be empty (default) or a whole number between {low} and {high}, "
                             f"not {value!r}.")
    if lr is None or not 0.0 < float(lr) < 1.0:
        raise ValueError(f"Learning rate must be between 0 and 1 (e.g. 1e-4), not {lr!r}.")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}.")

    out = Path(_clean_path_text(out_dir, "Output folder")).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"Output folder {str(out)!r} is a file; choose a folder.")
    # an earlier run, even one stopped before its first step (only the console file or the config written)
    earlier = any((out / name).exists() for name in (LOG_NAME, CONSOLE_NAME, "train_config.json"))
    if out.is_dir() and any(out.iterdir()) and not earlier:
        raise ValueError(f"Output folder {str(out)!r} is not empty and is not an earlier run; choose a new folder.")
    if resume and not earlier:
        raise ValueError(f"Nothing to resume in {str(out)!r}: it holds no {LOG_NAME}.")
    return TrainRequest(
        mode=mode,
        data=data,
        steps=int(steps),
        batch_size=int(batch_size),
        lr=float(lr),
        out_dir=out,
        preset=preset,
        resume=bool(resume),
        num_frames=None if num_frames is None else int(num_frames),
        height=None if height is None else int(height),
        width=None if width is None else int(width),
        lr_schedule=lr_schedule,
    )


def train_command(request: TrainRequest, python: str | None = None) -> list[str]:
    """Return the argument list that runs ``request`` (``python -m jog3r.train ...``).

    Args:
        request: a validated form.
        python: interpreter to run; defaults to the one running the app.

    Returns:
        The command as a list of strings, ready for :class:`subprocess.Popen` without a shell.
    """
    argv = [
        python or sys.executable,
        "-m",
        "jog3r.train",
        "--preset",
        request.preset,
        "--mode",
        request.mode,
        "--data",
        request.data,
        "--steps",
        str(request.steps),
        "--batch-size",
        str(request.batch_size),
        "--lr",
        f"{request.lr:g}",
        "--lr-schedule",
        request.lr_schedule,
        "--out",
        str(request.out_dir),
    ]
    for flag, value in (("--num-frames", request.num_frames), ("--height", request.height),
                        ("--width", request.width)):
        if value is not None:
            argv += [flag, str(value)]
    if request.resume:
        argv.append("--resume")
    return argv


def format_command(argv: list[str]) -> str:
    """Return ``argv`` as one shell-quoted line, for showing (never for running)."""
    return shlex.join(argv)


class Job:
    """One subprocess writing ``log.jsonl`` into ``out_dir``; started in its own process group.

    Args:
        argv: the command to run (no shell).
        out_dir: folder the process writes into; also its working directory.
        owner: identifier of the session that started it.
    """

    def __init__(self, argv: list[str], out_dir: Path, owner: str = "") -> None:
        self.argv = list(argv)
        self.out_dir = Path(out_dir)
        self.owner = owner
        self.log_path = self.out_dir / LOG_NAME
        self.console_path = self.out_dir / CONSOLE_NAME
        self.process: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.stopped = False
        self._records: list[dict] = []
        self._log_offset = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Create ``out_dir`` and start the process in a new session (its own process group)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.console_path, "ab") as console:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.out_dir,
                env=env,
                start_new_session=True,
            )
        self.started_at = time.time()
        logger.info("started training pid=%d: %s", self.process.pid, format_command(self.argv))

    @property
    def pid(self) -> int | None:
        """Process id (also the process-group id), or ``None`` before :meth:`start`."""
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has ended, else ``None`` (negative: killed by that signal)."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is not None and self.ended_at is None:
            self.ended_at = time.time()
        return code

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.process is not None and self.returncode is None

    @property
    def status(self) -> str:
        """One of ``"not started"``, ``"running"``, ``"stopped"``, ``"finished"``, ``"failed (exit N)"``."""
        if self.process is None:
            return "not started"
        code = self.returncode
        if code is None:
            return "running"
        if self.stopped:
            return "stopped"
        return "finished" if code == 0 else f"failed (exit {code})"

    @property
    def failed(self) -> bool:
        """Whether the process ended with a non-zero status without being stopped."""
        code = self.returncode
        return code not in (None, 0) and not self.stopped

    def stop(self, timeout: float = 5.0) -> None:
        """End the whole process group: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Safe to call on a finished job.
        """
        if self.process is None:
            return
        self.stopped = self.stopped or self.running
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break  # the whole group is gone
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("training pid=%d ignored %s; escalating", self.process.pid, sig.name)
                continue
            # The leader is gone; children may still linger in the group, so SIGKILL the group too.
            if sig is signal.SIGTERM:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            break
        self.returncode  # noqa: B018  (records ended_at)
        logger.info("training pid=%d %s", self.process.pid, self.status)

    def records(self) -> list[dict]:
        """All complete log records so far (reads only what was appended since the last call)."""
        with self._lock:
            if not self.log_path.exists():
                return list(self._records)
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a half-written last line waits for the next call
            for line in chunk[:end].splitlines():
                if line.strip():
                    try:
                        self._records.append(json.loads(line))
                    except json.JSONDecodeError:
                        logger.warning("skipping a malformed line of %s", self.log_path)
            self._log_offset += end
            return list(self._records)

    def console_tail(self, max_chars: int = 4000) -> str:
        """The last ``max_chars`` characters of the process's stdout + stderr."""
        if not self.console_path.exists():
            return ""
        with open(self.console_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_chars))
            return f.read().decode("utf-8", errors="replace")

    def checkpoints(self) -> list[Path]:
        """Checkpoint folders written so far: ``checkpoints/step_*`` in step order, then ``final`` if present."""
        steps = [p for p in (self.out_dir / "checkpoints").glob("step_*") if p.is_dir() and p.name[5:].isdigit()]
        found = sorted(steps, key=lambda p: int(p.name[5:]))  # by number: step_1000000 comes after step_999999
        if (self.out_dir / "final").is_dir():
            found.append(self.out_dir / "final")
        return found


class JobManager:
    """Runs one training job at a time for the whole app.

    Training uses the whole machine, so the job is shared: every session sees the current run's log and can
    stop it, and a page reload re-attaches to it instead of orphaning it. Starting a second run while one is
    running is refused with a message.
    """

    def __init__(self) -> None:
        self.current: Job | None = None
        self._lock = threading.Lock()

    def start(self, argv: list[str], out_dir: Path, owner: str = "") -> Job:
        """Start a job unless one is running.

        Args:
            argv: command to run (no shell).
            out_dir: the run's output folder.
            owner: the session that started it (for the log).

        Raises:
            RuntimeError: if a job is already running.
        """
        with self._lock:
            if self.current is not None and self.current.running:
                raise RuntimeError(
                    f"A training run is already running (pid {self.current.pid}, writing to "
                    f"{self.current.out_dir}); stop it or wait for it to finish."
                )
            job = Job(argv, out_dir, owner=owner)
            job.start()
            self.current = job
            return job

    def stop(self) -> Job | None:
        """Stop the current job if it runs; returns it (``None`` if no job was ever started)."""
        job = self.current
        if job is not None:
            job.stop()
        return job

    def stop_all(self) -> None:
        """Stop the current job (called when the app shuts down)."""
        self.stop()
