"""Run folders that survive being killed: atomic step checkpoints, a ``latest`` pointer, retention.

Layout of a run folder ``out/``::

    out/log.jsonl                       one JSON record per logged step (appended, flushed)
    out/train_config.json               the TrainConfig of the run
    out/checkpoints/step_000200/        model.safetensors, ema.safetensors, config.json, components.json,
                                        optimizer.pt, trainer_state.json
    out/checkpoints/latest              text file naming the newest COMPLETE step folder
    out/final/                          ``JOG3R.from_pretrained`` layout (EMA weights) written at the end

A step folder is written as ``.tmp-step_000200`` and renamed only once every file is on disk, so a run killed
mid-write leaves the previous checkpoint and the ``latest`` pointer untouched (nanoGPT/VGGT keep the same rule).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from jog3r.io.atomic import atomic_write_text, commit_dir  # noqa: F401  (commit_dir: re-exported)

logger = logging.getLogger(__name__)

_STEP_NAME = re.compile(r"step_(\d+)")


def step_dir_name(step: int) -> str:
    """Folder name of the checkpoint after ``step`` optimiser steps."""
    return f"step_{step:06d}"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically and fsync'ed (:func:`jog3r.io.atomic.atomic_write_text`)."""
    atomic_write_text(path, text, fsync=True)


def new_tmp_dir(parent: Path, name: str) -> Path:
    """Create an empty staging folder ``parent/.tmp-<name>`` (removing a stale one from a killed run)."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def step_of(folder: Path) -> int | None:
    """Step number of a ``step_XXXXXX`` folder name (any number of digits), or ``None`` for other names."""
    match = _STEP_NAME.fullmatch(Path(folder).name)
    return int(match.group(1)) if match else None


def step_folders(run_dir: Path) -> list[Path]:
    """Published step folders of a run, oldest first, ordered by step NUMBER (``step_1000001`` comes after
    ``step_999998``, which a sort by name gets wrong)."""
    ckpt_root = Path(run_dir) / "checkpoints"
    found = [p for p in ckpt_root.glob("step_*") if p.is_dir() and step_of(p) is not None]
    return sorted(found, key=step_of)


def publish_checkpoint(run_dir: Path, tmp_dir: Path, step: int, keep: int) -> Path:
    """Publish a staged checkpoint as ``checkpoints/step_XXXXXX``, point ``latest`` at it, prune old ones.

    Pruning keeps the published folder and the ``keep - 1`` newest step folders before it (by step number);
    folders of later steps (left by a run that was resumed from an earlier checkpoint) are not touched.

    Args:
        run_dir: the run folder.
        tmp_dir: staging folder returned by :func:`new_tmp_dir` with every file written.
        step: optimiser steps done.
        keep: number of newest step folders to keep (``>= 1``).

    Returns:
        The published folder.
    """
    ckpt_root = run_dir / "checkpoints"
    final = ckpt_root / step_dir_name(step)
    commit_dir(tmp_dir, final)
    write_text_atomic(ckpt_root / "latest", final.name)
    older = [p for p in step_folders(run_dir) if step_of(p) < step]
    for old in older[: max(0, len(older) - (max(1, keep) - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def resume_candidates(run_dir: Path) -> list[Path]:
    """Complete checkpoints to resume from, best first: the one ``latest`` names, then the earlier complete step
    folders, newest first (a caller falls back along this list when a checkpoint cannot be read).

    A ``latest`` naming a missing or incomplete folder is reported with a warning and the complete folders are
    used instead; without a ``latest`` pointer the list is empty (the run never published a checkpoint).
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    pointer = ckpt_root / "latest"
    if not pointer.exists():
        return []
    complete = [p for p in reversed(step_folders(run_dir)) if (p / "trainer_state.json").exists()]
    named = ckpt_root / pointer.read_text().strip()
    if named in complete:
        return [named] + [p for p in complete if step_of(p) < step_of(named)]
    logger.warning("%s names %s, which is missing or incomplete; using the newest complete checkpoint instead",
                   pointer, named.name)
    return complete


def latest_checkpoint(run_dir: Path) -> Path | None:
    """Newest complete checkpoint folder of a run, or ``None`` if there is none.

    Raises:
        ValueError: if ``latest`` names a folder that is missing or incomplete (the run folder was edited by hand).
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    pointer = ckpt_root / "latest"
    if not pointer.exists():
        return None
    folder = ckpt_root / pointer.read_text().strip()
    if not (folder / "trainer_state.json").exists():
        raise ValueError(f"{pointer} names {folder.name}, which is missing or incomplete; delete the pointer to restart")
    return folder


def read_state(folder: Path) -> dict:
    """Read ``trainer_state.json`` of a checkpoint folder."""
    return json.loads((folder / "trainer_state.json").read_text())
