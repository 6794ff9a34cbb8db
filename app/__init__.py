"""JOG3R Studio web app: a thin Gradio front end over :mod:`jog3r`, with an embedded viser 3D viewer.

Layout:

* ``__main__.py`` — ``python -m app`` (tyro CLI): build the :class:`app.runtime.Runtime`, build the demo, launch.
* ``runtime.py`` — the one object that owns the pipeline (loaded once), the viewer and per-session temp dirs.
* ``viewer.py`` — the viser server shown in the page; one scene per browser session.
* ``jobs.py`` — training runs as subprocesses (``python -m jog3r.train``).
* ``ui.py`` + ``tabs/`` — layout and wiring only; each handler calls one ``jog3r`` entry point.
"""
