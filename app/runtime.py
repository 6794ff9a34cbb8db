"""The app's one long-lived object: the pipeline (loaded once), the viewer, the training jobs, per-session folders.

Nothing here runs at import time. ``python -m app`` builds one :class:`Runtime`, calls :meth:`Runtime.load`
(so a wrong weights folder fails before the page opens), and hands it to :func:`app.ui.build_demo`.

Sessions are keyed by Gradio's ``session_hash``. A session owns a temporary folder (outputs of its runs, before
Gradio copies them to its own cache) and a viewer token. A browser session ends on ``demo.unload``; API clients
never send that, so at most ``max_sessions`` are kept and the least recently used one is closed beyond that.

Gradio fires ``unload`` whenever the page's heartbeat stream drops, which also happens to a live page while the
server is busy with a long CPU job. So an unload only schedules a check: :data:`UNLOAD_GRACE_S` seconds later the
session is closed unless its 3D viewer (an iframe of the same page) is still connected.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jog3r.checks import parse_device
from jog3r.pipeline import JOG3RPipeline

from app.jobs import JobManager
from app.viewer import ViewerHub

logger = logging.getLogger(__name__)

UNLOAD_GRACE_S = 10.0
"""Seconds between ``demo.unload`` and closing the session (see the module docstring)."""

DTYPES = ("float32", "bfloat16", "float16")
"""Weights dtypes of the denoiser (STDiT) the app accepts, as ``jog3r --dtype``; not float32 only on a GPU."""

PLAN_PREFIX = "plan-"
"""Sub-folders of a session made by the (non-model) cost preview; a new job does not delete them while in use."""


class DiskQuotaError(RuntimeError):
    """The app's files (session results + Gradio's uploads and cache) are over ``--disk-quota-mb``."""


def folder_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symlinks not followed; vanished files skipped)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_size if not os.path.islink(os.path.join(root, name)) else 0
    return total


def gradio_cache_dir() -> Path:
    """Where Gradio keeps uploads and served outputs (``GRADIO_TEMP_DIR``, default ``<tmp>/gradio``)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


@dataclass
class Session:
    """One browser tab (or one API client).

    Attributes:
        key: Gradio's ``session_hash``.
        token: the viewer token (see :mod:`app.viewer`), or ``""`` without a viewer.
        folder: the session's private temporary folder.
    """

    key: str
    token: str
    folder: Path
    weights: Path | None = None
    """The model folder this session loaded (Training tab), or ``None`` for the app's model."""
    _job_folders: list[Path] | None = field(default=None, repr=False)

    def new_folder(self, name: str) -> Path:
        """A fresh, empty sub-folder ``<name>-NNN`` for one run's outputs."""
        for i in itertools.count(1):
            path = self.folder / f"{name}-{i:03d}"
            try:
                path.mkdir(parents=True)
                if self._job_folders is not None:
                    self._job_folders.append(path)
                return path
            except FileExistsError:
                continue
        raise AssertionError("unreachable")

    def clear_results(self) -> None:
        """Delete the outputs of the session's earlier runs (Gradio already holds its own copy of what it
        showed); the cost preview's folders (:data:`PLAN_PREFIX`) stay."""
        for child in list(self.folder.iterdir()) if self.folder.is_dir() else []:
            if child.name.startswith(PLAN_PREFIX):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        """One model run: earlier results are deleted first, and if the run fails, the folders it made are
        deleted too, so a failed job (e.g. on a full disk) leaves nothing behind for other users to trip on."""
        self.clear_results()
        self._job_folders = []
        try:
            yield
        except BaseException:
            for path in self._job_folders:
                shutil.rmtree(path, ignore_errors=True)
            raise
        finally:
            self._job_folders = None


class Runtime:
    """Owns the pipelines, the viewer hub, the training jobs and the sessions.

    The app's model (``weights``) serves every session; a session may load another checkpoint for itself
    (Training tab, :meth:`load_for_session`) and go back to the app's model; up to ``max_models`` such
    checkpoints stay in memory (least recently used dropped, reloaded on next use).

    Args:
        weights: folder of a JOG3R checkpoint; ``None`` means the embedded default (``assets/jog3r-tiny``).
        device: torch device for the pipelines (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        dtype: weights dtype of the denoiser, one of :data:`DTYPES` (not float32 only on a GPU), as
            ``jog3r --dtype``.
        viewer: the viser hub, or ``None`` to run without a 3D viewer (tests, headless API use).
        max_sessions: sessions kept before the least recently used one is closed.
        tmp_root: parent of the per-session folders; default a new folder in the system temp dir.
        unload_grace_s: seconds between ``demo.unload`` and closing the session (see the module docstring).
        disk_quota_mb: most megabytes the app's files may take (session results + Gradio's uploads and cache)
            before a new job is refused with a message; ``None``: no quota.
        max_models: checkpoints loaded by sessions kept in memory besides the app's model.

    Raises:
        ValueError: an unusable ``device`` (:func:`jog3r.checks.parse_device`), an unknown ``dtype``, a
            non-float32 ``dtype`` on the CPU, or a non-positive ``disk_quota_mb``.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        *,
        dtype: str = "float32",
        viewer: ViewerHub | None = None,
        max_sessions: int = 32,
        tmp_root: str | Path | None = None,
        unload_grace_s: float = UNLOAD_GRACE_S,
        disk_quota_mb: float | None = None,
        max_models: int = 2,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if parse_device(device).type == "cpu" and dtype != "float32":
            raise ValueError(f"--dtype {dtype} needs a GPU --device (the CPU runs float32)")
        if disk_quota_mb is not None and not disk_quota_mb > 0:
            raise ValueError(f"--disk-quota-mb must be a positive number of megabytes, got {disk_quota_mb}")
        self.weights = Path(weights).expanduser() if weights else None
        self.device = device
        self.dtype = dtype
        self.viewer = viewer
        self.jobs = JobManager()
        self.max_sessions = max_sessions
        self.unload_grace_s = unload_grace_s
        self.disk_quota_mb = disk_quota_mb
        self.max_models = max_models
        self.root = Path(tempfile.mkdtemp(prefix="jog3r-studio-", dir=tmp_root))
        self._pipeline: JOG3RPipeline | None = None
        self._models: OrderedDict[str, JOG3RPipeline] = OrderedDict()
        self._load_lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._sessions_lock = threading.Lock()

    # ---- the model -------------------------------------------------------------------------------------------

    def _new_pipeline(self, folder: Path | None) -> JOG3RPipeline:
        pipeline = JOG3RPipeline.from_pretrained(folder, device=self.device)
        if self.dtype != "float32":
            pipeline.model.stdit.to(getattr(torch, self.dtype))
        return pipeline

    def load(self) -> JOG3RPipeline:
        """Load the app's pipeline if it is not loaded yet, and return it.

        Raises:
            FileNotFoundError, ValueError: from :meth:`JOG3RPipeline.from_pretrained` for a wrong weights folder.
        """
        with self._load_lock:
            if self._pipeline is None:
                logger.info("loading JOG3R from %s on %s (%s)", self.weights or "the embedded default", self.device,
                            self.dtype)
                self._pipeline = self._new_pipeline(self.weights)
                logger.info("loaded %s", self._pipeline.info.get("name", "JOG3R"))
            return self._pipeline

    @property
    def loaded(self) -> bool:
        """Whether the app's pipeline has been loaded."""
        return self._pipeline is not None

    @property
    def pipeline(self) -> JOG3RPipeline:
        """The app's pipeline (loads it on first use)."""
        return self._pipeline if self._pipeline is not None else self.load()

    def pipeline_for(self, key: str | None) -> JOG3RPipeline:
        """The pipeline session ``key`` uses: the checkpoint it loaded, else the app's."""
        weights = self.session(key).weights
        if weights is None:
            return self.pipeline
        with self._load_lock:
            pipeline = self._models.get(str(weights))
            if pipeline is not None:
                self._models.move_to_end(str(weights))
                return pipeline
        return self._remember(weights, self._new_pipeline(weights))  # dropped from memory: load it again

    def _remember(self, folder: Path, pipeline: JOG3RPipeline) -> JOG3RPipeline:
        with self._load_lock:
            self._models[str(folder)] = pipeline
            self._models.move_to_end(str(folder))
            while len(self._models) > self.max_models:
                dropped, _ = self._models.popitem(last=False)
                logger.info("dropped %s from memory (reloaded if a session uses it again)", dropped)
        return pipeline

    def load_for_session(self, key: str | None, weights: str | Path | None) -> dict:
        """Make session ``key`` use another checkpoint folder; the other sessions keep theirs.

        Args:
            key: Gradio ``session_hash``.
            weights: a folder written by ``python -m jog3r.train`` (``final/`` or ``checkpoints/step_*``);
                ``None`` or ``""`` goes back to the app's model.

        Returns:
            The session's pipeline's ``info``.

        Raises:
            FileNotFoundError, ValueError: with the loader's message; the session keeps its model.
        """
        session = self.session(key)
        if weights is None or not str(weights).strip():
            session.weights = None
            logger.info("session %s is back on the app's model", session.key)
            return self.pipeline.info
        folder = Path(str(weights).strip()).expanduser()
        pipeline = self._remember(folder, self._new_pipeline(folder))
        session.weights = folder
        logger.info("session %s now uses the weights in %s", session.key, folder)
        return pipeline.info

    def swap_weights(self, weights: str | Path | None) -> dict:
        """Replace the app's model (every session that did not load its own); the old one stays if loading fails.

        Args:
            weights: a checkpoint folder; ``None`` goes back to the embedded default.

        Returns:
            The new pipeline's ``info``.

        Raises:
            FileNotFoundError, ValueError: with the loader's message; the current pipeline is kept.
        """
        folder = Path(str(weights).strip()).expanduser() if weights is not None else None
        pipeline = self._new_pipeline(folder)
        with self._load_lock:
            self._pipeline, self.weights = pipeline, folder
        logger.info("now serving weights from %s", folder or "the embedded default")
        return pipeline.info

    def model_markdown(self, key: str | None = None) -> str:
        """One line describing the model session ``key`` uses (the app's if ``None``), for the page header."""
        weights = self.session(key).weights if key is not None else None
        info = (self.pipeline_for(key) if weights is not None else self.pipeline).info
        height, width = info.get("resolution", ("?", "?"))
        params = info.get("parameters")
        params_text = f"{params / 1e6:.1f} M parameters" if isinstance(params, (int, float)) else ""
        source = (f"weights: `{weights}` (loaded in this tab only)" if weights is not None
                  else f"weights: `{self.weights or 'embedded default'}`")
        parts = [
            f"**Model:** {info.get('name', 'JOG3R')}",
            f"{info.get('num_frames', '?')} frames at {width}x{height}",
            params_text,
            source,
            f"device: `{self.device}`" + (f" ({self.dtype})" if self.dtype != "float32" else ""),
        ]
        return " · ".join(p for p in parts if p)

    # ---- disk ------------------------------------------------------------------------------------------------

    def disk_usage_mb(self) -> float:
        """Megabytes used by the session folders and Gradio's uploads and cache."""
        cache = gradio_cache_dir()
        return (folder_bytes(self.root) + (folder_bytes(cache) if cache.is_dir() else 0)) / 2**20

    def check_disk_quota(self) -> None:
        """Raise :class:`DiskQuotaError` with a message for the user if the app's files are over the quota."""
        if self.disk_quota_mb is None:
            return
        used = self.disk_usage_mb()
        if used > self.disk_quota_mb:
            raise DiskQuotaError(
                f"The app's disk space is full ({used:.0f} MB of {self.disk_quota_mb:.0f} MB for uploads and "
                "results). Old uploads and results are deleted every few minutes: try again shortly, or ask whoever "
                "runs the app to raise --disk-quota-mb."
            )

    @contextlib.contextmanager
    def job(self, key: str | None) -> Iterator[Session]:
        """One model run of session ``key``: checks the disk quota, deletes the session's earlier results, and
        deletes this run's folders if it fails (:meth:`Session.job`)."""
        session = self.session(key)
        session.clear_results()  # free the session's own space before measuring
        self.check_disk_quota()
        with session.job():
            yield session

    # ---- sessions --------------------------------------------------------------------------------------------

    def session(self, key: str | None) -> Session:
        """The session for Gradio ``session_hash`` ``key``, created on first use."""
        key = key or "anonymous"
        evicted: list[Session] = []
        with self._sessions_lock:
            session = self._sessions.get(key)
            if session is None:
                token = self.viewer.open_session() if self.viewer is not None else ""
                folder = Path(tempfile.mkdtemp(prefix="session-", dir=self.root))
                session = self._sessions[key] = Session(key, token, folder)
                while len(self._sessions) > self.max_sessions:
                    evicted.append(self._sessions.popitem(last=False)[1])
            self._sessions.move_to_end(key)
        for old in evicted:
            self._close(old)
        return session

    def end_session_later(self, key: str | None, delay: float | None = None) -> threading.Timer:
        """On ``demo.unload``: close the session after ``delay`` seconds (default ``unload_grace_s``) unless its
        viewer is still connected."""
        delay = self.unload_grace_s if delay is None else delay
        timer = threading.Timer(delay, self._end_if_gone, args=(key or "anonymous",))
        timer.daemon = True
        timer.start()
        return timer

    def _end_if_gone(self, key: str) -> None:
        session = self._sessions.get(key)
        if session is None:
            return
        if self.viewer is not None and session.token and self.viewer.clients(session.token):
            logger.info("unload of session %s ignored: its page's viewer is still connected", key)
            return
        self.end_session(key)

    def end_session(self, key: str | None) -> None:
        """Close a session now: forget its viewer scene and delete its folder."""
        with self._sessions_lock:
            session = self._sessions.pop(key or "anonymous", None)
        if session is not None:
            self._close(session)

    def _close(self, session: Session) -> None:
        if self.viewer is not None and session.token:
            self.viewer.close_session(session.token)
        shutil.rmtree(session.folder, ignore_errors=True)
        logger.debug("closed session %s", session.key)

    @property
    def num_sessions(self) -> int:
        """How many sessions are open."""
        return len(self._sessions)

    def close(self) -> None:
        """Stop training runs and the viewer, and delete every session folder."""
        self.jobs.stop_all()
        if self.viewer is not None:
            self.viewer.stop()
        with self._sessions_lock:
            self._sessions.clear()
        with self._load_lock:
            self._models.clear()
        shutil.rmtree(self.root, ignore_errors=True)
