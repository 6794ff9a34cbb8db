"""viser GUI for a reconstruction shown with :func:`jog3r.viz.viewer.add_reconstruction`.

Kept apart from :mod:`jog3r.viz.viewer` (scene content) so that each module stays about one thing. Controls
are added to ``server.gui`` (every browser) or ``client.gui`` (one browser session), matching where the scene
nodes were added.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import viser

from jog3r.types import Reconstruction
from jog3r.viz.colors import GT_COLOR, rgb_to_hex, time_colors
from jog3r.viz.viewer import GroundTruthHandles, ReconstructionHandles, default_view

logger = logging.getLogger(__name__)

_MAX_LEGEND_SWATCHES = 32


def legend_html(num_frames: int, *, ground_truth: bool = False) -> str:
    """HTML legend of the time ramp: one swatch per frame labelled ``1 .. F`` (1-based, as people count).

    Args:
        num_frames: number of frames ``F``.
        ground_truth: also show the ground-truth swatch.

    Returns:
        An HTML snippet for ``gui.add_html``.
    """
    colors = [rgb_to_hex(c) for c in time_colors(num_frames)]
    step = max(1, int(np.ceil(num_frames / _MAX_LEGEND_SWATCHES)))
    shown = list(range(0, num_frames, step)) + ([num_frames - 1] if (num_frames - 1) % step else [])
    swatch = (
        '<span style="display:inline-block;text-align:center;margin:1px;font-size:10px">'
        '<span style="display:block;width:14px;height:14px;border-radius:3px;background:{c}"></span>'
        "{label}</span>"
    )
    parts = [swatch.format(c=colors[f], label=f + 1) for f in shown]
    html = '<div style="padding:0 8px"><b>Frames</b> (red = first, purple = last)<br>' + "".join(parts)
    if ground_truth:
        gt_swatch = f'<span style="color:{rgb_to_hex(GT_COLOR)}">&#9632;</span>'
        html += f"<br>{gt_swatch} ground truth (aligned)"
    return html + "</div>"


def set_initial_view(target: viser.ViserServer | viser.ClientHandle, recon: Reconstruction) -> None:
    """Point the browser camera at the reconstruction and make camera 0's up the scene's up.

    Args:
        target: a server (sets ``initial_camera`` for browsers that connect later) or one client (moves its
            camera as soon as the browser has reported its camera state, i.e. now or on its first update).
        recon: the reconstruction (see :func:`jog3r.viz.viewer.default_view`).
    """
    position, look_at, up = default_view(recon)
    if isinstance(target, viser.ViserServer):
        target.initial_camera.position, target.initial_camera.look_at = position, look_at
        target.initial_camera.up = up
        return
    camera, moved = target.camera, threading.Event()

    def move(_: object = None) -> None:
        if not moved.is_set():
            moved.set()
            camera.up_direction = up
            camera.position = position
            camera.look_at = look_at

    try:
        camera.update_timestamp  # viser asserts the browser has sent its camera at least once
    except AssertionError:
        camera.on_update(move)
        return
    move()


POINTS_OF = ("all frames", "the current frame")
"""Choices of the "Points of" dropdown: every frame's points, or only the frame on the slider."""


def budget_text(handles: ReconstructionHandles) -> str:
    """The panel's line on what is drawn: points drawn of those kept (the budget), frustums of frames.

    Args:
        handles: from :func:`jog3r.viz.viewer.add_reconstruction` (``num_drawn``, ``num_selected``, ...).

    Returns:
        Markdown, e.g. ``"300,000 of 8,847,360 kept points drawn (budget 300,000, a uniform sample over all frames) ·
        31 of 600 frames have a frustum (every 20th, and the slider's); the path line passes through every
        frame"``.
    """
    scope = f"frame {handles.frame + 1}" if handles.frame is not None else "all frames"
    text = f"{handles.num_drawn:,} of {handles.num_selected:,} kept points drawn"
    if handles.num_selected > handles.num_drawn:
        text += f" (budget {handles.max_points:,}, a uniform sample over {scope})"
    num_frames, shown = handles.recon.num_frames, len(handles.frustums)
    if shown < num_frames:
        step = handles.frustum_frames[1] - handles.frustum_frames[0]
        nth = {1: "st", 2: "nd", 3: "rd"}.get(step % 10 if step % 100 not in (11, 12, 13) else 0, "th")
        text += (f" · {shown} of {num_frames} frames have a frustum (every {step}{nth}, and the slider's); the path "
                 "line passes through every frame")
    return text


def playback_fps(num_frames: int) -> float:
    """Default playback speed: 4 frames per second, faster for long videos (a loop in about 20 s, at most 15)."""
    return float(min(15.0, max(4.0, num_frames / 20.0)))


class ViewerControls:
    """GUI panel: share of points kept, point size, colour mode, frame slider + play, GT toggle, what is drawn
    (:func:`budget_text`), legend.

    The frame slider is 1-based (``1 .. F``) and highlights that frame's frustum (long videos: the frame's own
    frustum, drawn while it is on the slider); with *Points of* = "the current frame" (and always while *Play*
    runs) only that frame's points are drawn, so the cloud follows the frame. "Play" advances the slider at
    ``fps`` in a daemon thread until unticked or :meth:`close` is called.

    Attributes:
        keep_percent, point_size, color_by, points_of, frame, play, show_gt, budget, legend: the viser GUI
            handles.
    """

    def __init__(
        self,
        target: viser.ViserServer | viser.ClientHandle,
        handles: ReconstructionHandles,
        *,
        ground_truth: GroundTruthHandles | None = None,
        fps: float | None = None,
        folder: str = "Reconstruction",
    ) -> None:
        """Add the controls.

        Args:
            target: the server or client whose ``gui`` gets the panel (same scope as ``handles``).
            handles: from :func:`jog3r.viz.viewer.add_reconstruction`.
            ground_truth: from :func:`jog3r.viz.viewer.add_ground_truth`, or ``None`` (checkbox hidden).
            fps: playback speed in frames per second; default :func:`playback_fps` of the frame count.
            folder: GUI folder label.

        Raises:
            ValueError: if ``fps <= 0``.
        """
        fps = playback_fps(handles.recon.num_frames) if fps is None else fps
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.handles, self.ground_truth, self.fps = handles, ground_truth, fps
        self._stop = threading.Event()
        self._player: threading.Thread | None = None
        gui, num_frames = target.gui, handles.recon.num_frames
        size = float(handles.points.point_size)
        self._folder = gui.add_folder(folder)
        with self._folder:
            start = handles.keep_percent if handles.keep_percent is not None else 100.0
            self.keep_percent = gui.add_slider(
                "Points kept (%)", min=1, max=100, step=1, initial_value=float(min(max(start, 1.0), 100.0)),
                hint="Share of the points drawn: the most confident ones (the exports use the same cut).",
            )
            # relative to the drawn size (0.4 % of the scene extent): world units (~1e-4 .. 6e-2) made the
            # slider's min/max labels overlap and its value box truncate
            self.point_size = gui.add_slider(
                "Point size (x)", min=0.1, max=5.0, step=0.1, initial_value=1.0,
                hint="Times the size the points were first drawn with.",
            )
            self.color_by = gui.add_dropdown(
                "Colour by", ("rgb", "time", "confidence"), initial_value=handles.color_by
            )
            self.points_of = gui.add_dropdown("Points of", POINTS_OF, initial_value=POINTS_OF[0],
                                              disabled=num_frames < 2)
            self.frame = gui.add_slider(
                "Frame", min=1, max=max(num_frames, 2), step=1, initial_value=1, disabled=num_frames < 2
            )
            self.play = gui.add_checkbox("Play", False, disabled=num_frames < 2,
                                         hint="Step through the frames, drawing each frame's points.")
            self.show_gt = gui.add_checkbox("Show ground truth", True, visible=ground_truth is not None)
            self.budget = gui.add_markdown(budget_text(handles))
            self.legend = gui.add_html(legend_html(num_frames, ground_truth=ground_truth is not None))
        self.keep_percent.on_update(lambda _: self.update_points(keep_percent=self.keep_percent.value))
        self.color_by.on_update(lambda _: self.update_points(color_by=self.color_by.value))
        self._base_size = size
        self.point_size.on_update(
            lambda _: setattr(self.handles.points, "point_size", self._base_size * self.point_size.value))
        self.points_of.on_update(lambda _: self._show_frame())
        self.frame.on_update(lambda _: self._show_frame())
        self.play.on_update(lambda _: self._start_playing() if self.play.value else self._show_frame())
        if ground_truth is not None:
            self.show_gt.on_update(lambda _: ground_truth.set_visible(self.show_gt.value))

    @property
    def current_frame(self) -> int:
        """The 0-based frame on the slider."""
        return min(int(self.frame.value), self.handles.recon.num_frames) - 1

    def update_points(self, **how) -> int:
        """``handles.update_points(**how)`` (returns the points drawn) and the panel's :func:`budget_text` line."""
        drawn = self.handles.update_points(**how)
        self.budget.content = budget_text(self.handles)
        return drawn

    def _show_frame(self) -> None:
        """Highlight the slider's frustum; draw only its points while playing or with "the current frame"."""
        frame = self.current_frame
        self.handles.highlight_frame(frame)
        one = self.play.value or self.points_of.value == POINTS_OF[1]
        wanted = frame if one and self.handles.recon.num_frames > 1 else None
        if wanted != self.handles.frame:
            self.update_points(frame=wanted)

    def step(self) -> int:
        """Advance the frame slider by one (wrapping to 1 after ``F``) and return the new 1-based frame."""
        num_frames = self.handles.recon.num_frames
        self.frame.value = self.frame.value % num_frames + 1
        return self.frame.value

    def _start_playing(self) -> None:
        self._show_frame()
        if self._player is not None and self._player.is_alive():
            return

        def loop() -> None:
            while not self._stop.wait(1.0 / self.fps) and self.play.value:
                self.step()

        self._player = threading.Thread(target=loop, name="jog3r-viewer-play", daemon=True)
        self._player.start()

    def close(self) -> None:
        """Stop playback and remove the panel."""
        self._stop.set()
        if self._player is not None:
            self._player.join(timeout=2.0)
        self._folder.remove()
