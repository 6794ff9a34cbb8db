"""Atomic writes, the one place of the package that moves files into place (``os.replace``).

A file is written under a temporary name next to its target and renamed onto it only once complete, so a reader
never sees a half-written file and a process killed mid-write (``kill -9``, Ctrl-C, a full disk) leaves the old
file, or none, never a torn one. A folder is staged next to its target and swapped in the same way.

* :func:`atomic_path` - context manager: write the yielded temporary path (any writer: safetensors, PyAV, PIL,
  numpy, zipfile), then it is moved onto the target; on failure it is deleted.
* :func:`atomic_write_bytes`, :func:`atomic_write_text` - the same for data already in memory.
* :func:`commit_dir` - publish a fully written folder under its final name (replacing an older one).
* :func:`staged_dir` - context manager: a staging folder ``.<name>.partial`` committed on success, deleted on
  failure.

``fsync=True`` also flushes the file to disk before the rename (survives a power cut, not only a killed process);
checkpoints use it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False, parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write; on success it replaces ``path``, on failure it is removed.

    The temporary name is unique (``.<stem>.<random>.tmp<suffix>``: concurrent writers never share one) and keeps
    the target's suffix, so writers that choose the format by extension (PyAV, PIL, ``numpy.savez``) work. The
    file gets the usual permissions (``0666`` minus the umask), not ``mkstemp``'s ``0600``.

    Args:
        path: the target file.
        fsync: flush the written file to disk before the rename.
        parents: create the target's folder (and its parents) first.
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def commit_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Atomically publish a fully written ``tmp_dir`` as ``final_dir`` (replacing an older one of that name).

    An older ``final_dir`` is first renamed to ``.trash-<name>`` (then deleted), so at every instant either the
    old or the new folder is complete under one of the two names.
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    if final_dir.exists():
        trash = final_dir.with_name(f".trash-{final_dir.name}")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(final_dir, trash)
        os.replace(tmp_dir, final_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp_dir, final_dir)


@contextmanager
def staged_dir(out: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder ``.<out>.partial`` next to ``out``; on success swap it in as ``out``
    (:func:`commit_dir`), on any failure delete it (a stale one from a killed run is removed first).

    A failure thus leaves neither a mix of old and new files nor a partial folder, and an earlier ``out`` is
    replaced only once the new one is complete.
    """
    out = Path(out)
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        commit_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "commit_dir", "staged_dir"]
