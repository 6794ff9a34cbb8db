"""``build_demo(runtime) -> gr.Blocks``: the page layout and the wiring, nothing else.

Every event goes through :class:`Wiring`, which

* turns the library's ``ValueError`` / ``FileNotFoundError`` (user-facing messages) into ``gr.Error`` popups, and
  any other exception into a short error popup plus a logged traceback, so a bad input never takes the app down
  (an out-of-memory error says to use fewer frames);
* puts model events in one queue (``concurrency_limit=1``, shared ``concurrency_id``): two users get their jobs
  run one after the other, never at the same time on the same model;
* gives every user action an ``api_name`` (public in ``/?view=api``, callable from ``gradio_client``), and keeps
  page-only glue private.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from app.runtime import DiskQuotaError, Runtime
from app.tabs.consistency import ConsistencyTab
from app.tabs.estimate import EstimateTab
from app.tabs.generate import GenerateTab
from app.tabs.training import TrainingTab

logger = logging.getLogger(__name__)

MODEL_QUEUE = "model"
"""``concurrency_id`` shared by every event that runs the model."""

THEME = gr.themes.Default(
    primary_hue="indigo",
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"],
)
"""System fonts only: the app works offline and fetches nothing from a CDN."""

CSS = """
#jog3r-header h1 { margin-bottom: 0; }
#jog3r-viewer-col { position: sticky; top: 8px; align-self: flex-start; }
/* Gradio clips its container with overflow: hidden, which makes it the sticky column's scroll box (one that
   never scrolls), so the viewer scrolled away with the page; clip does not make a scroll box. */
.gradio-container { overflow: clip !important; }
.jog3r-note { font-size: 0.9em; opacity: 0.8; }
"""

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, DiskQuotaError)
"""Exceptions whose message is written for the user (the library's input checks, the disk quota)."""

CACHE_CLEAN_S, CACHE_MAX_AGE_S = 300, 1800
"""Gradio's ``delete_cache``: every 5 minutes, uploads and served files older than 30 minutes are deleted."""


def user_errors(fn: Callable) -> Callable:
    """Wrap a handler so failures become messages in the page and the app keeps serving.

    ``gr.Error`` passes through; :data:`USER_ERRORS` become ``gr.Error(message)``; out-of-memory becomes a hint to
    use fewer frames; anything else is logged with its traceback and shown as a short error.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as exc:
            logger.info("%s: %s", fn.__name__, exc)
            raise gr.Error(str(exc)) from exc
        except Exception as exc:
            logger.exception("%s failed", fn.__name__)
            if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
                raise gr.Error("Out of memory: use fewer or smaller frames.") from exc
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise gr.Error("The server's disk is full, so the results could not be written (nothing was "
                               "kept). Try again later, or tell whoever runs the app.") from exc
            raise gr.Error(f"Unexpected error ({type(exc).__name__}: {exc}). The app is still running.") from exc

    return wrapper


class Wiring:
    """The one helper that attaches handlers to events (see the module docstring)."""

    def on(
        self,
        triggers: Any | Sequence[Any],
        fn: Callable,
        inputs: Sequence[gr.components.Component] | None,
        outputs: Sequence[gr.components.Component] | None,
        *,
        api_name: str | None,
        model: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Attach ``fn`` to ``triggers`` (one event listener like ``button.click`` or a list of them).

        Args:
            triggers: event listener(s), e.g. ``run.click`` or ``[files.change, stride.change]``.
            fn: the handler.
            inputs, outputs: components.
            api_name: endpoint name for ``gradio_client`` (``/name``); ``None`` keeps the event private.
            model: whether the handler runs the model (queued one at a time in :data:`MODEL_QUEUE`).
            **kwargs: passed to :func:`gr.on` (``show_progress``, ``trigger_mode``, ...).

        Returns:
            The event's dependency (for ``.then``).
        """
        triggers = list(triggers) if isinstance(triggers, (list, tuple)) else [triggers]
        if model:
            kwargs.setdefault("concurrency_limit", 1)
            kwargs.setdefault("concurrency_id", MODEL_QUEUE)
        return gr.on(
            triggers=triggers,
            fn=user_errors(fn),
            inputs=list(inputs or []),
            outputs=list(outputs or []),
            api_name=api_name,
            api_visibility="public" if api_name else "private",
            **kwargs,
        )


def build_demo(runtime: Runtime) -> gr.Blocks:
    """Build the page: header, four tabs, and the 3D viewer beside them.

    Args:
        runtime: the app runtime (pipeline, viewer, jobs, sessions).

    Returns:
        The Blocks app (not launched; see :func:`launch`).
    """
    wire = Wiring()
    with gr.Blocks(title="JOG3R Studio", analytics_enabled=False,
                   delete_cache=(CACHE_CLEAN_S, CACHE_MAX_AGE_S)) as demo:
        with gr.Row(elem_id="jog3r-header"):
            gr.Markdown(
                "# JOG3R Studio\n"
                "Text → video, video → cameras, and both at once, from one model "
                "(*Towards 3D-Consistent Video Generators*, Huang et al.)."
            )
        model_info = gr.Markdown(elem_classes="jog3r-note")
        with gr.Row():
            with gr.Column(scale=5):
                with gr.Tabs() as tabs:
                    with gr.Tab("Generate", id="generate"):
                        generate = GenerateTab(runtime, wire)
                    with gr.Tab("Estimate cameras", id="estimate"):
                        estimate = EstimateTab(runtime, wire)
                    with gr.Tab("3D consistency", id="consistency"):
                        consistency = ConsistencyTab(runtime, wire)
                    with gr.Tab("Training", id="training"):
                        training = TrainingTab(runtime, wire, model_info)
            with gr.Column(scale=4, elem_id="jog3r-viewer-col"):
                viewer = gr.HTML(_viewer_placeholder(runtime), label="3D viewer", elem_id="jog3r-viewer-box")
                gr.Markdown(
                    "Drag to orbit, scroll to zoom. The viewer's panel (minimise it with its − button) has the share of "
                    "points kept, point size, colours, the frame slider (*Play* draws each frame's points in turn) "
                    "and the ground-truth toggle.",
                    elem_classes="jog3r-note",
                )

        # Cross-tab glue: send the generated video to the consistency tab and show that tab.
        wire.on(generate.send.click, lambda path: (path, gr.Tabs(selected="consistency")), [generate.video],
                [consistency.video_a, tabs], api_name=None)

        def open_session(request: gr.Request) -> tuple[str, str]:
            session = runtime.session(request.session_hash)
            if runtime.viewer is None or runtime.viewer.server is None:
                return _viewer_placeholder(runtime), runtime.model_markdown(request.session_hash)
            return (runtime.viewer.iframe_html(session.token, request.headers.get("host")),
                    runtime.model_markdown(request.session_hash))

        def end_session(request: gr.Request) -> None:
            runtime.end_session_later(request.session_hash)

        wire.on(demo.load, open_session, None, [viewer, model_info], api_name=None)
        training.attach_on_load(demo, wire)
        demo.unload(end_session)
    return demo


def _viewer_placeholder(runtime: Runtime) -> str:
    if runtime.viewer is None:
        return "<p class='jog3r-note'>The 3D viewer is off in this run of the app.</p>"
    return "<p class='jog3r-note'>Connecting the 3D viewer…</p>"


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = 7860,
    max_upload_mb: int = 200,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> Any:
    """Launch ``demo`` offline with the app's theme, queue and upload limit.

    Args:
        demo: from :func:`build_demo`.
        host: interface to listen on (``127.0.0.1``: this machine only).
        port: TCP port; ``None`` lets Gradio pick a free one from 7860 up.
        max_upload_mb: largest accepted upload in megabytes.
        prevent_thread_lock: return at once (tests) instead of serving until interrupted.
        quiet: do not print the URL banner.

    Returns:
        What :meth:`gr.Blocks.launch` returns.
    """
    demo.queue(default_concurrency_limit=1)
    from app.tabs.estimate import EXAMPLES_DIR  # the example clips may live outside the working directory

    return demo.launch(
        allowed_paths=[str(EXAMPLES_DIR)] if EXAMPLES_DIR.is_dir() else None,
        server_name=host,
        server_port=port,
        max_file_size=f"{int(max_upload_mb)}mb",
        theme=THEME,
        css=CSS,
        show_error=True,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        ssr_mode=False,
        mcp_server=False,
        share=False,
        inbrowser=False,
    )
