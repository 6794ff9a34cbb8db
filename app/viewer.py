"""The viser server shown inside the page, with one scene per browser session.

One :class:`viser.ViserServer` runs beside Gradio on its own port. Each Gradio session gets a random token, and
its page embeds the viewer as::

    <iframe src="http://HOST:PORT/?websocket=ws://HOST:PORT/session/TOKEN">

viser's client connects its websocket to exactly that URL, so the token arrives as the websocket path. When a
client connects, :class:`ViewerHub` reads the path, files the client under its session and draws that session's
current scene with ``client.scene`` (client-scoped nodes, invisible to every other browser). Reloading the frame
reconnects as a new client and gets the scene again; ending the session removes it.

All drawing is :mod:`jog3r.viz.viewer` (``add_reconstruction`` / ``add_ground_truth``): this module only decides
*which* clients see *what*.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import secrets
import threading
from urllib.parse import urlsplit

import torch
import viser

from jog3r.types import Reconstruction
from jog3r.viz import viewer as viz
from jog3r.viz.controls import ViewerControls, set_initial_view
from jog3r.io.scene import DEFAULT_KEEP_PERCENT

logger = logging.getLogger(__name__)

SESSION_PATH = "/session/"
PANEL_WIDTH_PX = 230
"""Width of the viewer's floating control panel, in CSS pixels (about a third of the in-page frame)."""


@dataclasses.dataclass
class GroundTruth:
    """Ground-truth cameras to draw beside a reconstruction.

    Attributes:
        cam2world: ``[F, 4, 4]`` camera-to-world (OpenCV), one per reconstructed frame.
        K: ``[F, 3, 3]`` intrinsics in pixels of ``image_size``.
        image_size: ``(H, W)``.
    """

    cam2world: torch.Tensor
    K: torch.Tensor
    image_size: tuple[int, int]


@dataclasses.dataclass
class SceneState:
    """What one session's viewer shows; every client of the session is drawn from it.

    Attributes:
        recon: the reconstruction, or ``None`` for an empty scene.
        ground_truth: optional ground-truth cameras.
        keep_percent: draw the ``keep_percent`` % most confident points (default: the exports' cut).
        color_by: ``"rgb"``, ``"time"`` or ``"confidence"``.
        label: a short caption shown in the viewer's control panel.
    """

    recon: Reconstruction | None = None
    ground_truth: GroundTruth | None = None
    keep_percent: float = DEFAULT_KEEP_PERCENT
    color_by: str = "rgb"
    label: str = ""


@dataclasses.dataclass
class _ClientView:
    handles: viz.ReconstructionHandles
    controls: ViewerControls

    def close(self) -> None:
        try:
            self.controls.close()
        except Exception:  # the browser may already be gone
            logger.debug("closing viewer controls failed", exc_info=True)


@dataclasses.dataclass
class _Session:
    token: str
    scene: SceneState = dataclasses.field(default_factory=SceneState)
    clients: dict[int, viser.ClientHandle] = dataclasses.field(default_factory=dict)
    views: dict[int, _ClientView] = dataclasses.field(default_factory=dict)


class ViewerHub:
    """A viser server whose browser clients are grouped by Gradio session.

    Args:
        host: interface to listen on (the app's host).
        port: TCP port (``0`` picks a free one).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.host = host
        self.requested_port = port
        self.server: viser.ViserServer | None = None
        self._sessions: dict[str, _Session] = {}
        self._client_token: dict[int, str] = {}
        self._lock = threading.RLock()

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> int:
        """Start the viser server (idempotent) and return its port."""
        if self.server is None:
            self.server = viser.ViserServer(host=self.host, port=self.requested_port, verbose=False)
            self.server.on_client_connect(self._on_connect)
            self.server.on_client_disconnect(self._on_disconnect)
            logger.info("viser viewer on http://%s:%d", self.host, self.port)
        return self.port

    def stop(self) -> None:
        """Stop the viser server and forget every session."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        with self._lock:
            self._sessions.clear()
            self._client_token.clear()

    @property
    def port(self) -> int:
        """The port the server listens on (may differ from the requested one if that was taken)."""
        if self.server is None:
            raise RuntimeError("the viewer is not started")
        return self.server.get_port()

    # ---- sessions --------------------------------------------------------------------------------------------

    def open_session(self) -> str:
        """Create a session with an empty scene and return its token."""
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._sessions[token] = _Session(token)
        return token

    def close_session(self, token: str) -> None:
        """Forget a session and clear what its still-connected clients show."""
        with self._lock:
            session = self._sessions.pop(token, None)
        if session is None:
            return
        for view in session.views.values():
            view.close()
        for client_id, client in list(session.clients.items()):
            self._client_token.pop(client_id, None)
            try:
                client.scene.reset()
            except Exception:  # the browser may already be gone
                logger.debug("could not reset client %d", client_id, exc_info=True)

    def tokens(self) -> list[str]:
        """Tokens of the open sessions."""
        with self._lock:
            return list(self._sessions)

    def clients(self, token: str) -> list[viser.ClientHandle]:
        """The browser clients currently showing session ``token``."""
        with self._lock:
            session = self._sessions.get(token)
            return [] if session is None else list(session.clients.values())

    def scene_state(self, token: str) -> SceneState | None:
        """The scene session ``token`` shows, or ``None`` for an unknown session."""
        with self._lock:
            session = self._sessions.get(token)
            return None if session is None else session.scene

    def iframe_html(self, token: str, page_host: str | None = None, height: int = 720) -> str:
        """HTML of the ``<iframe>`` that shows session ``token``'s scene.

        Args:
            token: from :meth:`open_session`.
            page_host: the ``Host`` header of the page request (``"example.org:7860"``), so the browser reaches the
                viewer on the same machine name as the page; defaults to the listening host.
            height: frame height in CSS pixels.
        """
        host = urlsplit(f"//{page_host}").hostname if page_host else None
        if not host:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"  # IPv6 literal
        url = f"http://{host}:{self.port}/?websocket=ws://{host}:{self.port}{SESSION_PATH}{token}"
        return (
            f'<iframe id="jog3r-viewer" src="{html.escape(url, quote=True)}" title="3D viewer" '
            f'style="width:100%;height:min({int(height)}px, 85vh);border:1px solid var(--border-color-primary);'
            f'border-radius:8px" allow="fullscreen"></iframe>'
        )

    # ---- drawing ---------------------------------------------------------------------------------------------

    def show(
        self,
        token: str,
        recon: Reconstruction | None,
        *,
        ground_truth: GroundTruth | None = None,
        keep_percent: float = DEFAULT_KEEP_PERCENT,
        color_by: str = "rgb",
        label: str = "",
    ) -> int:
        """Replace session ``token``'s scene and redraw it on every client of the session.

        ``keep_percent`` (in ``(0, 100]``) is the share of the most confident points drawn; the default is the
        exports' cut, so the viewer shows the points of the bundle's ``pointcloud.ply``.

        Returns:
            The number of clients drawn to (``0`` if the page's viewer has not connected yet, as it draws on
            connect, or if the session has ended meanwhile).
        """
        state = SceneState(recon, ground_truth, float(keep_percent), color_by, label)
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                logger.info("session %s ended before its scene was ready; nothing to draw", token)
                return 0
            session.scene = state
            clients = list(session.clients.values())
        for client in clients:
            self._draw(session, client)
        return len(clients)

    def set_keep_percent(self, token: str, keep_percent: float) -> int:
        """Re-select session ``token``'s points, keeping the ``keep_percent`` % most confident, in place.

        The viewer's own "Points kept (%)" slider follows, so the page and the viewer panel agree.

        Returns:
            The number of clients updated.

        Raises:
            ValueError: if ``keep_percent`` is not in ``(0, 100]`` (NaN included).
        """
        keep_percent = float(keep_percent)
        if not 0.0 < keep_percent <= 100.0:
            raise ValueError(f"The share of points to show must be between 1 and 100 %, got {keep_percent}.")
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return 0
            session.scene.keep_percent = keep_percent
            views = list(session.views.values())
        for view in views:
            view.controls.update_points(keep_percent=keep_percent)
            view.controls.keep_percent.value = keep_percent
        return len(views)

    def handles(self, token: str) -> list[viz.ReconstructionHandles]:
        """The drawn reconstructions of session ``token``, one per connected client."""
        with self._lock:
            session = self._sessions.get(token)
            return [] if session is None else [view.handles for view in session.views.values()]

    def _draw(self, session: _Session, client: viser.ClientHandle) -> None:
        """Draw ``session.scene`` on one client (points, cameras, GT, control panel), replacing what it showed."""
        state = session.scene
        with self._lock:
            old = session.views.pop(client.client_id, None)
        if old is not None:
            old.close()
        client.scene.reset()
        if state.recon is None:
            return
        handles = viz.add_reconstruction(
            client.scene, state.recon, keep_percent=state.keep_percent, color_by=state.color_by
        )
        gt_handles = None
        if state.ground_truth is not None:
            gt = state.ground_truth
            gt_handles = viz.add_ground_truth(
                client.scene,
                gt.cam2world,
                gt.K,
                gt.image_size,
                state.recon.cam2world,
                frustum_scale=handles.frustum_scale,
                frames=handles.frustum_frames,
            )
        set_initial_view(client, state.recon)
        controls = ViewerControls(client, handles, ground_truth=gt_handles, folder=state.label or "Reconstruction")
        with self._lock:
            session.views[client.client_id] = _ClientView(handles, controls)

    # ---- viser callbacks ---------------------------------------------------------------------------------------

    def _on_connect(self, client: viser.ClientHandle) -> None:
        token = _session_token(self.server, client)
        with self._lock:
            session = self._sessions.get(token) if token else None
            if session is not None:
                session.clients[client.client_id] = client
                self._client_token[client.client_id] = token
        if session is None:
            logger.info("viewer client %d has no live session (path token %r)", client.client_id, token)
            client.gui.add_markdown("**This viewer's session has ended.** Reload the page to start a new one.")
            return
        logger.debug("viewer client %d joined session %s", client.client_id, token)
        try:  # a narrow floating panel (the user can minimise or move it), so the scene gets most of the frame
            client.gui.configure_theme(control_width="small", show_logo=False, show_share_button=False)
            client.gui.main_panel.set_width(PANEL_WIDTH_PX)
        except Exception:
            logger.debug("could not set the viewer theme", exc_info=True)
        try:
            self._draw(session, client)
        except Exception:
            logger.exception("drawing the scene for viewer client %d failed", client.client_id)

    def _on_disconnect(self, client: viser.ClientHandle) -> None:
        with self._lock:
            token = self._client_token.pop(client.client_id, None)
            session = self._sessions.get(token) if token else None
            view = None
            if session is not None:
                session.clients.pop(client.client_id, None)
                view = session.views.pop(client.client_id, None)
        if view is not None:
            view.close()  # stops playback


def _session_token(server: viser.ViserServer | None, client: viser.ClientHandle) -> str | None:
    """The session token in the websocket path a client connected with (``/session/TOKEN``), if any.

    viser has no public accessor for the handshake request, so this reads the live websocket connection through a
    private attribute (viser>=1.1,<2, as pinned). If that ever changes the client gets no token, and the viewer
    says the session ended instead of showing another session's scene.
    """
    try:
        connection = server._websock_server._live_connections[client.client_id]  # noqa: SLF001
        path = connection.request.path
    except (AttributeError, KeyError):
        logger.warning("cannot read viser client %d's websocket path", client.client_id)
        return None
    path = path.partition("?")[0].rstrip("/")
    if not path.startswith(SESSION_PATH):
        return None
    return path[len(SESSION_PATH) :] or None
