"""Checks of user-given settings shared by the command line, the Python API and the app.

Each check returns the value in its canonical form or raises ``ValueError`` with one actionable line (the CLI prints
it as ``error: ...``, the app as a message box), never a traceback from deep inside torch:

* :func:`parse_device` - a torch device string that exists on this machine (``cpu``, ``cuda``, ``cuda:1``, ``mps``);
* :func:`check_seed` - an integer seed that ``torch.Generator.manual_seed`` takes (``0 .. 2**64 - 1``);
* :func:`check_finite_weights` - no NaN / inf in a loaded state dict, naming the first damaged tensor;
* :func:`check_intrinsics` - known pinhole intrinsics in pixels that give a plausible field of view.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

MAX_SEED = 2**64 - 1
"""Largest seed ``torch.Generator.manual_seed`` accepts (it takes an unsigned 64-bit integer)."""


def parse_device(spec: str | torch.device) -> torch.device:
    """A torch device that is usable here, from a string such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.

    Args:
        spec: the device as typed by the user (surrounding spaces and case are ignored), or a ``torch.device``.

    Returns:
        The ``torch.device``.

    Raises:
        ValueError: a string torch does not parse (``"garbage"``), a device type this package does not run on
            (``meta``, ...), or a GPU that is not present (``"cuda"`` on a machine or a torch build without CUDA, an
            index past the last GPU, ``"mps"`` off Apple silicon).
    """
    text = str(spec).strip().lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"device {str(spec)!r} is not a torch device; use cpu, cuda, cuda:<index> or mps") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ValueError(f"device {text!r} asked for, but CUDA is not available (torch {torch.__version__} is "
                             f"{build}); use cpu, or install a CUDA build of torch on a machine with an NVIDIA GPU")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {text!r} asked for, but this machine has {count} CUDA device(s): "
                             f"use cuda:0..cuda:{count - 1}")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {text!r} asked for, but MPS (Apple silicon) is not available; use cpu")
        return device
    raise ValueError(f"device {text!r} is not supported; use cpu, cuda, cuda:<index> or mps")


def check_seed(seed) -> int:
    """The seed as an ``int`` in ``[0, 2**64 - 1]`` (what ``torch.Generator.manual_seed`` accepts).

    Raises:
        ValueError: not an integer (a float with a fraction, NaN, inf, text) or outside the range.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, float)) or (isinstance(seed, float) and not (
            math.isfinite(seed) and seed.is_integer())):
        raise ValueError(f"the seed must be a whole number in [0, 2**64 - 1], got {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"the seed must be in [0, 2**64 - 1] = [0, {MAX_SEED}], got {seed}")
    return seed


def check_finite_weights(state: Mapping[str, torch.Tensor], what: str) -> None:
    """Refuse a state dict holding NaN or inf, naming the first damaged tensor and how many are damaged.

    Args:
        state: ``name -> tensor`` as loaded (only floating-point and complex tensors are checked).
        what: the file it came from, for the message.

    Raises:
        ValueError: if a tensor holds a NaN or an inf.
    """
    bad: list[tuple[str, int, int]] = []
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        if tensor.numel() and not bool(torch.isfinite(tensor).all()):
            bad.append((name, int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())))
    if bad:
        name, nans, infs = bad[0]
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise ValueError(f"{what}: tensor {name!r} holds {nans} NaN and {infs} inf values{more}; the weights are "
                         "damaged (a diverged training run or a broken file): load an earlier checkpoint")


FOV_RANGE_DEG = (1.0, 175.0)
"""Fields of view (degrees, each axis) that known intrinsics may give; outside, the focal was surely typed in other
units (1e-6 px gives 180 deg, 1e6 px on a 400-px frame gives 0.02 deg)."""


def check_intrinsics(fx, fy, cx, cy, image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Known pinhole intrinsics in pixels of an ``H x W`` image, as floats, or one actionable ``ValueError``.

    Shared by ``jog3r v2c --focal`` and the app's known-intrinsics fields.

    Args:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels (OpenCV: pixel ``(u, v)`` covers ``[u, u + 1)``).
        image_size: ``(H, W)`` of the frames the intrinsics belong to.

    Returns:
        ``(fx, fy, cx, cy)``.

    Raises:
        ValueError: a value that is missing or not a finite number, a field of view outside
            :data:`FOV_RANGE_DEG` on either axis (non-positive focals included), or a principal point outside the
            image.
    """
    height, width = image_size
    values = []
    for name, value in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"known intrinsics: {name} must be a number of pixels, got {value!r}")
        values.append(number)
    fx, fy, cx, cy = values
    lo, hi = FOV_RANGE_DEG
    for name, focal, size in (("fx", fx, width), ("fy", fy, height)):
        fov = math.degrees(2 * math.atan2(size / 2, focal)) if focal > 0 else 180.0
        if not lo <= fov <= hi:
            raise ValueError(f"known intrinsics: {name} = {focal:g} px gives a {fov:.3g} deg field of view on "
                             f"{size}-pixel frames (plausible: {lo:g}-{hi:g} deg); give the focal length in pixels "
                             f"of the input frames")
    if not (0 <= cx < width and 0 <= cy < height):
        raise ValueError(f"known intrinsics: the principal point ({cx:g}, {cy:g}) lies outside the {width}x{height} "
                         "frame; give it in pixels of the input frames")
    return fx, fy, cx, cy


__all__ = ["FOV_RANGE_DEG", "MAX_SEED", "check_finite_weights", "check_intrinsics", "check_seed", "parse_device"]
