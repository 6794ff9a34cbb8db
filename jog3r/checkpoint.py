"""Checkpoints: atomic safetensors + JSON config files, and loaders for OpenSora and DUSt3R weights.

* Our own format is a directory with ``model.safetensors`` and ``config.json`` (written by
  :meth:`jog3r.model.JOG3R.save_pretrained`). Files are written atomically: to a temporary file in the same
  directory, flushed and fsync'ed, then ``os.replace``-d over the target, so a crash never leaves a partial file
  where a good one was (nanoGPT ``train.py`` / STYLE.md guideline 15).
* Everything is read from LOCAL paths only; nothing is downloaded. ``.pth``/``.pt`` files are read with
  ``torch.load(weights_only=True)`` (only ``argparse.Namespace`` is allow-listed, for DUSt3R's ``args``, and it is
  never evaluated).
* Configs are (nested) dataclasses with Enum fields, serialised to plain JSON and rebuilt from the dataclass
  type hints (no ``eval``).
* One key-remap function per foreign checkpoint: :func:`load_opensora_checkpoint` (OpenSora v1.0 STDiT,
  REFERENCE.md A.5) and :func:`load_dust3r_checkpoint` (DUSt3R decoder + heads, REFERENCE.md B.2).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from jog3r.checks import check_finite_weights
from jog3r.io.atomic import atomic_path
from jog3r.dit.stdit import STDiT, load_opensora_state_dict

logger = logging.getLogger(__name__)

WRAPPER_KEYS = ("ema", "model", "state_dict", "module")
"""Keys under which training scripts nest the state dict (OpenSora ``ema.pt``, DUSt3R ``.pth``, Lightning)."""

OPENSORA_RECOMPUTED = ("pos_embed", "pos_embed_temporal")
"""Buffers recomputed by the STDiT from its own scales; dropped from OpenSora files (REFERENCE.md quirk F.3)."""

DUST3R_PREFIXES = ("decoder_embed.", "dec_blocks.", "dec_blocks2.", "dec_norm.", "downstream_head1.",
                   "downstream_head2.")
"""State-dict prefixes taken from a DUSt3R checkpoint (REFERENCE.md B.2); the ViT encoder keys are skipped."""


@dataclass
class LoadReport:
    """What a foreign-checkpoint loader did, key by key.

    Attributes:
        loaded: model keys that received a tensor.
        missing: model keys the file did not provide (they keep their current values).
        unexpected: file keys with no counterpart in the model.
        skipped: ``"key: reason"`` for file keys deliberately not loaded (shape mismatch, encoder, dropped).
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- atomic writes
def _atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Run ``write(tmp_path)`` on a temp file next to ``path``, fsync it, then move it onto ``path``
    (:func:`jog3r.io.atomic.atomic_path`)."""
    with atomic_path(path, fsync=True) as tmp:
        write(str(tmp))
    return Path(path)


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write a state dict to ``path`` as safetensors, atomically.

    Tensors are detached, moved to the CPU and made contiguous; tensors sharing storage are cloned (safetensors
    refuses shared storage).

    Args:
        state_dict: ``name -> tensor``.
        path: target file (parents are created).
        metadata: optional string metadata stored in the safetensors header.

    Returns:
        The written path.

    Raises:
        TypeError: if a value is not a tensor.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state_dict[{name!r}] is {type(value).__name__}, not a tensor")
        t = value.detach().cpu().contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if t.numel() and key in seen:
            t = t.clone()
        seen.add(key)
        tensors[name] = t
    return _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=dict(metadata or {})))


def save_json(data: Any, path: str | os.PathLike) -> Path:
    """Write JSON (indented, sorted keys) to ``path`` atomically. Returns the path."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return _atomic_write(path, write)


# -------------------------------------------------------------------------------------------------- reading
def _local_file(path: str | os.PathLike) -> Path:
    text = os.fspath(path)
    if "://" in text:
        raise ValueError(f"{text!r} looks like a URL; checkpoints are loaded from local files only (download it first)")
    p = Path(text).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"checkpoint not found: {p}; pass the path of a local .safetensors/.pth/.pt file")
    if not p.is_file():
        raise ValueError(f"{p} is not a file; pass a .safetensors/.pth/.pt checkpoint file")
    return p


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a local checkpoint file without unwrapping it.

    Args:
        path: ``.safetensors`` (read with safetensors) or ``.pth``/``.pt``/``.bin`` (``torch.load`` with
            ``weights_only=True``, ``map_location='cpu'``, ``argparse.Namespace`` allow-listed).

    Returns:
        The file's top-level dict.

    Raises:
        FileNotFoundError: if the path does not exist.
        ValueError: for a URL, a directory, an unknown suffix or a file that is not a (safe) checkpoint.
    """
    p = _local_file(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".safetensors":
            return dict(load_file(str(p), device="cpu"))
        if suffix in (".pth", ".pt", ".bin", ".ckpt"):
            with torch.serialization.safe_globals([argparse.Namespace]):
                obj = torch.load(p, map_location="cpu", weights_only=True)
        else:
            raise ValueError(f"unknown checkpoint suffix {suffix!r} for {p}; use .safetensors, .pth or .pt")
    except ValueError:
        raise
    except Exception as exc:  # safetensors / pickle errors: the file is not a readable checkpoint
        raise ValueError(f"{p} is not a readable checkpoint file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Mapping):
        raise ValueError(f"{p} holds a {type(obj).__name__}, not a dict of tensors")
    return dict(obj)


def unwrap_state_dict(obj: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Return the tensor dict inside a checkpoint, unwrapping ``ema``/``model``/``state_dict``/``module``.

    Args:
        obj: a checkpoint's top-level dict.

    Returns:
        ``name -> tensor``.

    Raises:
        ValueError: if no dict of tensors is found.
    """
    for _ in range(3):  # e.g. {"model": {"module": {...}}}
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"no tensors found in the checkpoint (top-level keys: {sorted(obj)[:10]})")
    return tensors


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """:func:`read_checkpoint` followed by :func:`unwrap_state_dict`; NaN / inf tensors are refused, by name."""
    state = unwrap_state_dict(read_checkpoint(path))
    check_finite_weights(state, str(path))
    return state


def check_shapes(model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise if keys present in both dicts have different shapes.

    Args:
        model_state: the model's ``state_dict()``.
        state: tensors about to be loaded.
        what: name of the source, used in the message.

    Raises:
        ValueError: naming every mismatching key (up to 8) with the checkpoint's and the model's shapes.
    """
    bad = [
        f"{key!r}: checkpoint {tuple(value.shape)} vs model {tuple(model_state[key].shape)}"
        for key, value in state.items()
        if key in model_state and tuple(model_state[key].shape) != tuple(value.shape)
    ]
    if bad:
        more = f" (and {len(bad) - 8} more)" if len(bad) > 8 else ""
        raise ValueError(
            f"{what}: shape mismatch for {'; '.join(sorted(bad)[:8])}{more}; build the model with the checkpoint's "
            "hyper-parameters"
        )


# ------------------------------------------------------------------------------------------ foreign weights
def load_opensora_checkpoint(stdit: STDiT, path: str | os.PathLike) -> LoadReport:
    """Load an OpenSora v1.0 STDiT checkpoint (REFERENCE.md A.5) into ``stdit``.

    Accepts ``.pth``/``.pt``/``.safetensors`` holding a plain state dict or one wrapped in
    ``ema``/``model``/``state_dict``. ``pos_embed``/``pos_embed_temporal`` are dropped (recomputed from the
    config's scales); a 4-D PixArt ``x_embedder.proj.weight`` is unsqueezed to 5-D as OpenSora's loader does.

    Args:
        stdit: the target model.
        path: local checkpoint file.

    Returns:
        :class:`LoadReport` (missing and unexpected keys are also logged by name).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: for a non-checkpoint file, or a shape mismatch (naming the key and both shapes).
    """
    state = load_state_dict_file(path)
    report = LoadReport(skipped=[f"{k}: recomputed from the config" for k in OPENSORA_RECOMPUTED if k in state])
    state = {k: v for k, v in state.items() if k not in OPENSORA_RECOMPUTED}
    model_state = stdit.state_dict()
    key = "x_embedder.proj.weight"
    if key in state and state[key].ndim == 4 and key in model_state and model_state[key].ndim == 5:
        state[key] = state[key].unsqueeze(2)  # PixArt 2-D patch embed -> 3-D with temporal kernel 1
    check_shapes(model_state, state, "OpenSora checkpoint")
    load_opensora_state_dict(stdit, state, strict=False)
    report.unexpected = sorted(k for k in state if k not in model_state)
    report.missing = sorted(k for k in model_state if k not in state and k not in OPENSORA_RECOMPUTED)
    report.loaded = sorted(k for k in state if k in model_state)
    logger.info("OpenSora checkpoint %s: %d tensors loaded", path, len(report.loaded))
    if report.missing or report.unexpected:
        logger.warning("OpenSora checkpoint %s: missing %s, unexpected %s", path, report.missing, report.unexpected)
    return report


def load_dust3r_checkpoint(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Load DUSt3R's ``decoder_embed``, ``dec_blocks(2)``, ``dec_norm``, ``downstream_head1/2`` where shapes fit.

    A DUSt3R ``.pth`` is ``{'model': state_dict, 'args': Namespace}`` (REFERENCE.md B.2); ``args`` is ignored,
    never evaluated. If the file has no ``dec_blocks2.*`` keys (a CroCo checkpoint) the ``dec_blocks.*`` weights
    are duplicated into ``dec_blocks2``, as DUSt3R's ``load_state_dict`` does. Keys whose shape differs from the
    model's (e.g. ``decoder_embed`` 1024 -> 768 vs the STDiT's 1152 -> D), keys the model lacks (e.g.
    ``dec_blocks2`` for the joint-3D decoder, DPT heads) and encoder keys are skipped and reported.

    Args:
        model: a module with DUSt3R's attribute names (:class:`jog3r.model.JOG3R` or
            :class:`jog3r.recon.decoder.PointmapDecoder`).
        path: local ``.pth``/``.pt``/``.safetensors`` file.

    Returns:
        :class:`LoadReport`; ``skipped`` lists ``"key: reason"``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: for a non-checkpoint file or one with no decoder key at all.
    """
    state = load_state_dict_file(path)
    if not any(k.startswith("dec_blocks2.") for k in state):
        state.update({"dec_blocks2." + k[len("dec_blocks."):]: v for k, v in state.items()
                      if k.startswith("dec_blocks.")})
    model_state = model.state_dict()
    report = LoadReport()
    chosen: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not key.startswith(DUST3R_PREFIXES):
            report.skipped.append(f"{key}: not part of the DUSt3R decoder/heads (encoder replaced by the STDiT)")
        elif key not in model_state:
            report.unexpected.append(key)
            report.skipped.append(f"{key}: no such parameter in this model")
        elif tuple(model_state[key].shape) != tuple(value.shape):
            report.skipped.append(
                f"{key}: shape {tuple(value.shape)} in the file vs {tuple(model_state[key].shape)} in the model"
            )
        else:
            chosen[key] = value
    if not chosen:
        raise ValueError(f"{path}: no DUSt3R decoder/head tensor fits this model (is it a DUSt3R checkpoint?)")
    model.load_state_dict(chosen, strict=False)
    report.loaded = sorted(chosen)
    report.missing = sorted(k for k in model_state if k.startswith(DUST3R_PREFIXES) and k not in chosen)
    for line in report.skipped:
        logger.info("DUSt3R checkpoint: skipped %s", line)
    logger.info("DUSt3R checkpoint %s: %d tensors loaded, %d skipped", path, len(chosen), len(report.skipped))
    return report


# ---------------------------------------------------------------------------------------- config (de)serialising
def config_to_dict(config: Any) -> Any:
    """Turn a (nested) dataclass config into JSON-compatible data: Enums -> values, tuples -> lists.

    Args:
        config: a dataclass instance (or any value inside one).

    Returns:
        dict / list / scalar.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, enum.Enum):
        return config.value
    if isinstance(config, (tuple, list)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {str(k): config_to_dict(v) for k, v in config.items()}
    return config


def _convert(tp: Any, value: Any) -> Any:
    """Rebuild ``value`` as type ``tp`` (dataclass, Enum, tuple, Optional/Union of those, or plain)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for arg in args:
            try:
                return _convert(arg, value)
            except (TypeError, ValueError):
                continue
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return config_from_dict(tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if origin is tuple or tp is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if args:
            return tuple(_convert(a, v) for a, v in zip(args, value))
        return tuple(value)
    return value


def config_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a dataclass config of type ``cls`` from :func:`config_to_dict` output, using its type hints.

    Args:
        cls: the dataclass type.
        data: JSON-style mapping.

    Returns:
        ``cls`` instance.

    Raises:
        ValueError: on keys that are not fields of ``cls`` or invalid Enum values.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {sorted(names)}")
    return cls(**{k: _convert(hints[k], v) for k, v in data.items()})


def save_config(config: Any, path: str | os.PathLike) -> Path:
    """Write a dataclass config as JSON, atomically (see :func:`config_to_dict`)."""
    return save_json(config_to_dict(config), path)


def load_config(cls: type, path: str | os.PathLike) -> Any:
    """Read a JSON config written by :func:`save_config` into a ``cls`` instance.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: on invalid JSON or keys (naming the file).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from exc
    try:
        return config_from_dict(cls, data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{p}: {exc}") from exc
