"""The four tabs. Each is a class that lays out its widgets in ``__init__`` and whose methods are the handlers.

Handlers take plain widget values, call one ``jog3r`` entry point for the work, and return what the widgets show;
the helpers below are the little glue they share.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr


def progress_callback(progress: gr.Progress | None) -> Callable[[float, str], None] | None:
    """Adapt Gradio's progress bar to the pipeline's ``progress(fraction, description)`` callable."""
    if progress is None:
        return None

    def report(fraction: float, description: str = "") -> None:
        progress(float(fraction), desc=description)

    return report


def file_path(value: Any) -> Path | None:
    """The local path of a ``gr.File`` / ``gr.Video`` value (a path string, a ``NamedString`` or ``None``)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):  # gradio_client / gr.Video payloads
        value = value.get("path") or value.get("video", {}).get("path")
    return Path(str(getattr(value, "name", value)))


def file_paths(value: Any) -> list[Path]:
    """The local paths of a ``gr.File(file_count="multiple")`` value, in upload order."""
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [p for p in (file_path(v) for v in values) if p is not None]


def markdown_table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> str:
    """A two-column Markdown table."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def timings_text(timings: dict[str, float]) -> str:
    """``"10.6 s (vae_encode 5.8 s, align 3.8 s, ...)"`` from a pipeline's ``timings`` (seconds per stage)."""
    stages = [f"{name} {seconds:.1f} s" for name, seconds in timings.items() if name != "total"]
    total = timings.get("total", sum(timings.values()))
    return f"{total:.1f} s" + (f" ({', '.join(stages)})" if stages else "")
