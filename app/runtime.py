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

import itertools
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from jog3r.pipeline import JOG3RPipeline

from app.jobs import JobManager
from app.viewer import ViewerHub

logger = logging.getLogger(__name__)

UNLOAD_GRACE_S = 10.0
"""Seconds between ``demo.unload`` and closing the session (see the module docstring)."""


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

    def new_folder(self, name: str) -> Path:
        """A fresh, empty sub-folder ``<name>-NNN`` for one run's outputs."""
        for i in itertools.count(1):
            path = self.folder / f"{name}-{i:03d}"
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
        raise AssertionError("unreachable")


class Runtime:
    """Owns the pipeline, the viewer hub, the training jobs and the sessions.

    Args:
        weights: folder of a JOG3R checkpoint; ``None`` means the embedded default (``assets/jog3r-tiny``).
        device: torch device for the pipeline (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        viewer: the viser hub, or ``None`` to run without a 3D viewer (tests, headless API use).
        max_sessions: sessions kept before the least recently used one is closed.
        tmp_root: parent of the per-session folders; default a new folder in the system temp dir.
        unload_grace_s: seconds between ``demo.unload`` and closing the session (see the module docstring).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        *,
        viewer: ViewerHub | None = None,
        max_sessions: int = 32,
        tmp_root: str | Path | None = None,
        unload_grace_s: float = UNLOAD_GRACE_S,
    ) -> None:
        self.weights = Path(weights).expanduser() if weights else None
        self.device = device
        self.viewer = viewer
        self.jobs = JobManager()
        self.max_sessions = max_sessions
        self.unload_grace_s = unload_grace_s
        self.root = Path(tempfile.mkdtemp(prefix="jog3r-studio-", dir=tmp_root))
        self._pipeline: JOG3RPipeline | None = None
        self._load_lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._sessions_lock = threading.Lock()

    # ---- the model -------------------------------------------------------------------------------------------

    def load(self) -> JOG3RPipeline:
        """Load the pipeline if it is not loaded yet, and return it.

        Raises:
            FileNotFoundError, ValueError: from :meth:`JOG3RPipeline.from_pretrained` for a wrong weights folder.
        """
        with self._load_lock:
            if self._pipeline is None:
                logger.info("loading JOG3R from %s on %s", self.weights or "the embedded default", self.device)
                self._pipeline = JOG3RPipeline.from_pretrained(self.weights, device=self.device)
                logger.info("loaded %s", self._pipeline.info.get("name", "JOG3R"))
            return self._pipeline

    @property
    def loaded(self) -> bool:
        """Whether the pipeline has been loaded."""
        return self._pipeline is not None

    @property
    def pipeline(self) -> JOG3RPipeline:
        """The loaded pipeline (loads it on first use)."""
        return self._pipeline if self._pipeline is not None else self.load()

    def swap_weights(self, weights: str | Path | None) -> dict:
        """Load another checkpoint folder and make it the app's pipeline; the old one stays if loading fails.

        Args:
            weights: a folder written by ``python -m jog3r.train`` (``final/`` or ``checkpoints/step_*``);
                ``None`` goes back to the embedded default.

        Returns:
            The new pipeline's ``info``.

        Raises:
            FileNotFoundError, ValueError: with the loader's message; the current pipeline is kept.
        """
        folder = Path(str(weights).strip()).expanduser() if weights is not None else None
        pipeline = JOG3RPipeline.from_pretrained(folder, device=self.device)
        with self._load_lock:
            self._pipeline, self.weights = pipeline, folder
        logger.info("now serving weights from %s", folder or "the embedded default")
        return pipeline.info

    def model_markdown(self) -> str:
        """One line describing the loaded model, for the page header."""
        info = self.pipeline.info
        height, width = info.get("resolution", ("?", "?"))
        params = info.get("parameters")
        params_text = f"{params / 1e6:.1f} M parameters" if isinstance(params, (int, float)) else ""
        parts = [
            f"**Model:** {info.get('name', 'JOG3R')}",
            f"{info.get('num_frames', '?')} frames at {width}x{height}",
            params_text,
            f"weights: `{self.weights or 'embedded default'}`",
            f"device: `{self.device}`",
        ]
        return " · ".join(p for p in parts if p)

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
        shutil.rmtree(self.root, ignore_errors=True)
