"""plotly figures: camera trajectories, alignment loss, training curves and per-frame values.

Every function returns a ``plotly.graph_objects.Figure`` (Gradio's ``gr.Plot`` shows it as is). Colours come
from :mod:`jog3r.viz.colors`: camera markers follow the red -> purple time ramp (JOG3R Fig. 4), ground truth
is :data:`~jog3r.viz.colors.GT_COLOR`, and extra trajectories get the line colours of
:func:`~jog3r.viz.colors.series_color`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from jog3r.viz.colors import GT_COLOR, rgb_to_hex, series_color, time_colors
from jog3r.viz.viewer import align_ground_truth

logger = logging.getLogger(__name__)

#: Keys accepted for each training curve, first match wins (the trainer writes ``loss_*``,
#: the paper says ``L_*``).
TRAINING_KEYS: dict[str, tuple[str, ...]] = {
    "L_total": ("loss_total", "L_total", "total"),
    "L_gen": ("loss_gen", "L_gen"),
    "L_rec": ("loss_rec", "L_rec"),
}
_SKIPPED_HISTORY_KEYS = ("iter", "lr", "time")


def _time_colorscale(num_frames: int) -> list[list]:
    """Plotly colorscale of the time ramp over ``[0, 1]``."""
    colors = [rgb_to_hex(c) for c in time_colors(num_frames)]
    if num_frames == 1:
        return [[0.0, colors[0]], [1.0, colors[0]]]
    return [[i / (num_frames - 1), c] for i, c in enumerate(colors)]


def _axis_segments(cam2world: np.ndarray, length: float) -> tuple[list, list, list]:
    """Polyline coordinates (``None``-separated) of each camera's viewing direction (+z, OpenCV)."""
    xs, ys, zs = [], [], []
    for c2w in cam2world:
        start, end = c2w[:3, 3], c2w[:3, 3] + length * c2w[:3, 2]
        xs += [start[0], end[0], None]
        ys += [start[1], end[1], None]
        zs += [start[2], end[2], None]
    return xs, ys, zs


def trajectory_figure(
    cam2world_list: Sequence[torch.Tensor],
    labels: Sequence[str],
    gt: torch.Tensor | None = None,
    *,
    align: bool = True,
    show_directions: bool = True,
    title: str = "Camera trajectories",
) -> go.Figure:
    """3D camera centres coloured red -> purple over time: predictions and optional ground truth.

    Trajectories are "up to scale" and in their own world frames, so with ``align=True`` each one is
    similarity-aligned (:func:`jog3r.viz.viewer.align_ground_truth`) onto the reference: ``gt`` when given,
    otherwise the first trajectory. This is what makes e.g. T2V+C and T2V->V2C cameras comparable in one plot.

    Args:
        cam2world_list: ``P`` tensors ``[F, 4, 4]`` camera-to-world (OpenCV axes,
            :mod:`jog3r.geometry.camera`).
        labels: ``P`` legend labels.
        gt: optional ``[F, 4, 4]`` ground-truth camera-to-world.
        align: similarity-align the trajectories (needs equal ``F`` everywhere).
        show_directions: draw a short segment along each camera's viewing direction (+z).
        title: figure title.

    Returns:
        The figure: per trajectory a line (series colour) with time-coloured markers and a direction trace,
            the
        first with a "frame" colour bar; ground truth as a dashed :data:`GT_COLOR` line.

    Raises:
        ValueError: if ``labels`` and ``cam2world_list`` differ in length, the list is empty, or ``align`` is
            set and frame counts differ.
    """
    if len(cam2world_list) != len(labels) or not cam2world_list:
        raise ValueError(f"need one label per trajectory, got {len(cam2world_list)} and {len(labels)} labels")
    reference = gt if gt is not None else cam2world_list[0]
    counts = {int(c.shape[0]) for c in cam2world_list} | ({int(gt.shape[0])} if gt is not None else set())
    if align and len(counts) > 1:
        raise ValueError(f"aligning needs equal frame counts, got {sorted(counts)}; pass align=False")
    ref_np = reference.detach().cpu().double().numpy()
    extent = float(np.ptp(ref_np[:, :3, 3], axis=0).max()) or 1.0
    fig = go.Figure()
    for index, (c2w, label) in enumerate(zip(cam2world_list, labels)):
        c2w = c2w.detach().cpu().float()
        if align and (gt is not None or index > 0):
            c2w, _ = align_ground_truth(c2w, reference.detach().cpu().float())
        c2w_np = c2w.double().numpy()
        centres, num_frames = c2w_np[:, :3, 3], len(c2w_np)
        fig.add_trace(
            go.Scatter3d(
                x=centres[:, 0], y=centres[:, 1], z=centres[:, 2], mode="lines+markers", name=label,
                line=dict(color=rgb_to_hex(series_color(index)), width=4),
                marker=dict(
                    size=5, color=list(range(1, num_frames + 1)), colorscale=_time_colorscale(num_frames),
                    cmin=1, cmax=max(num_frames, 2), showscale=index == 0,
                    colorbar=dict(title="frame", len=0.6) if index == 0 else None,
                ),
                text=[f"{label}: frame {f + 1}" for f in range(num_frames)], hoverinfo="text",
            )
        )
        if show_directions:
            xs, ys, zs = _axis_segments(c2w_np, 0.08 * extent)
            fig.add_trace(
                go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", name=f"{label} (view dir.)", showlegend=False,
                             line=dict(color=rgb_to_hex(series_color(index)), width=2), hoverinfo="skip")
            )
    if gt is not None:
        centres = gt.detach().cpu().double().numpy()[:, :3, 3]
        fig.add_trace(
            go.Scatter3d(
                x=centres[:, 0], y=centres[:, 1], z=centres[:, 2], mode="lines+markers", name="ground truth",
                line=dict(color=rgb_to_hex(GT_COLOR), width=3, dash="dash"),
                marker=dict(size=3, color=rgb_to_hex(GT_COLOR)),
            )
        )
    up = -ref_np[0, :3, 1]  # camera 0's up (OpenCV y points down)
    fig.update_layout(
        title=title,
        scene=dict(
            aspectmode="manual", aspectratio=_box_ratio(fig),
            camera=dict(up=dict(x=up[0], y=up[1], z=up[2]), eye=dict(x=1.25, y=1.25, z=1.25)),
        ),
        legend=dict(x=0.0, y=1.0), margin=dict(l=0, r=0, t=40, b=0),
    )
    return fig


def _box_ratio(fig: go.Figure, floor: float = 0.2) -> dict[str, float]:
    """Scene box of every drawn point, longest side 1, true proportions except that no side is under ``floor``
    (a straight path stays visible). plotly's ``aspectmode="data"`` normalises the sides' product instead, so an
    elongated path (a 16-frame dolly: 0.7 along z, 0.2 across) got a box ~3x the view and left the plot."""
    pts = [np.asarray([v for v in getattr(tr, axis) if v is not None], dtype=float)
           for tr in fig.data for axis in ("x", "y", "z")]
    ranges = []
    for k in range(3):
        vals = np.concatenate([p for p in pts[k::3] if p.size] or [np.zeros(1)])
        vals = vals[np.isfinite(vals)]
        ranges.append(float(vals.max() - vals.min()) if vals.size else 0.0)
    top = max(ranges) or 1.0
    return {axis: max(r / top, floor) for axis, r in zip("xyz", ranges)}


def note_figure(text: str, *, height: int = 220) -> go.Figure:
    """An empty figure that says why there is nothing to plot (e.g. no ground truth given), instead of a blank
    placeholder."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=13, color="#555"))
    fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), height=height,
                      margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="rgba(0,0,0,0)")
    return fig


def loss_figure(
    history: Mapping[str, Sequence[float]] | Sequence[float], *, title: str = "Global alignment"
) -> go.Figure:
    """Alignment loss against iteration (log y axis when every value is positive).

    Args:
        history: the dict returned by :func:`jog3r.align.fit.fit` (``"iter"``, ``"loss"`` and the terms
            ``"pointmap"``, ``"fl"``, ``"transl"``; ``"lr"`` and ``"time"`` are not drawn), or a plain list of
            losses.
        title: figure title.

    Returns:
        The figure: ``loss`` as a solid line, every other series dashed.
    """
    if not isinstance(history, Mapping):
        history = {"loss": list(history)}
    length = max((len(v) for k, v in history.items() if k not in _SKIPPED_HISTORY_KEYS), default=0)
    steps = list(history.get("iter", range(length)))
    fig = go.Figure()
    values = []
    for key, series in history.items():
        if key in _SKIPPED_HISTORY_KEYS or not len(series):
            continue
        ys = [float(v) for v in series]
        values += [v for v in ys if math.isfinite(v)]
        main = key == "loss"
        line = dict(width=3 if main else 1.5, dash=None if main else "dash")
        fig.add_trace(go.Scatter(x=steps[: len(ys)], y=ys, mode="lines", name=key, line=line))
    log_y = bool(values) and min(values) > 0
    fig.update_layout(
        title=title, xaxis_title="iteration", yaxis_title="loss", yaxis_type="log" if log_y else "linear"
    )
    return fig


def _as_float(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` (missing, non-numeric, NaN or infinite)."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def training_figure(records: Sequence[Mapping[str, object]], *, title: str = "Training") -> go.Figure:
    """L_total, L_gen and L_rec against the training step, from JSON-lines log records.

    Robust to partial logs: a record lacking a key (``gen``-only or ``rec``-only runs), with a non-numeric or
    non-finite value, or without ``"step"`` (its index is used) simply contributes no point to that curve.

    Args:
        records: dicts as written to ``log.jsonl`` by :mod:`jog3r.train.trainer` (``step``, ``loss_total``,
            ``loss_gen``, ``loss_rec``, ...); the ``L_*`` spellings of :data:`TRAINING_KEYS` are accepted too.
        title: figure title.

    Returns:
        The figure with one line per curve that has at least one point (JOG3R Sec. 3.2:
        ``L_total = L_gen + lambda L_rec``).
    """
    fig = go.Figure()
    for index, (name, keys) in enumerate(TRAINING_KEYS.items()):
        steps, values = [], []
        for position, record in enumerate(records):
            key = next((k for k in keys if k in record), None)
            value = None if key is None else _as_float(record[key])
            if value is None:
                continue
            step = _as_float(record.get("step"))
            steps.append(position if step is None else step)
            values.append(value)
        if values:
            line = dict(color=rgb_to_hex(series_color(index)), width=3 if index == 0 else 2)
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=name, line=line))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss")
    return fig


def per_frame_figure(
    values: Sequence[float] | torch.Tensor | np.ndarray,
    title: str,
    *,
    frames: Sequence[int] | None = None,
    y_label: str = "value",
) -> go.Figure:
    """Bar chart of one value per frame (e.g. MEt3R per frame), bars coloured on the time ramp.

    Args:
        values: ``[N]`` floats; NaN (e.g. an empty MEt3R mask) leaves a gap.
        title: figure title.
        frames: ``N`` 1-based frame numbers for the x axis; default ``1 .. N`` (pass ``2 .. F`` for MEt3R's
            pairs ``(0, f)``).
        y_label: y-axis title.

    Returns:
        The figure, with the mean over finite values as a dashed horizontal line.

    Raises:
        ValueError: if ``frames`` and ``values`` differ in length.
    """
    ys = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    xs = list(range(1, len(ys) + 1)) if frames is None else list(frames)
    if len(xs) != len(ys):
        raise ValueError(f"{len(ys)} values but {len(xs)} frame numbers")
    colors = [rgb_to_hex(c) for c in time_colors(max(xs, default=1))]
    fig = go.Figure(
        go.Bar(x=xs, y=[None if not math.isfinite(v) else float(v) for v in ys],
               marker_color=[colors[x - 1] for x in xs], name=y_label)
    )
    finite = ys[np.isfinite(ys)]
    if finite.size:
        fig.add_hline(y=float(finite.mean()), line_dash="dash", annotation_text=f"mean {finite.mean():.4f}")
    fig.update_layout(title=title, xaxis_title="frame", yaxis_title=y_label, showlegend=False)
    return fig


__all__ = ["trajectory_figure", "loss_figure", "training_figure", "per_frame_figure", "TRAINING_KEYS"]
