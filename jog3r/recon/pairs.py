"""Frame-pair graphs (DUSt3R "scene graphs") for a video of ``F`` frames.

Frame indices are 0-based everywhere in the package, so the paper's pairs ``(1 -> f), f = 2..F`` are the
edges ``(0, f), f = 1..F-1``.
"""

from __future__ import annotations

import enum

import torch


class SceneGraph(str, enum.Enum):
    """Which frame pairs go through the decoder (DUSt3R ``make_pairs``, D3 ``dust3r/image_pairs.py``).

    Members:
        FIRST_TO_ALL: the paper's ``(1 -> f)`` pairs, ``(0, f)`` for ``f = 1..F-1`` (JOG3R Sec. 3.2).
        ONE_REF: ``(r, f)`` for every ``f != r`` with a chosen reference ``r`` (DUSt3R ``oneref-r``).
        COMPLETE: every unordered pair ``(i, j), i < j``.
        SLIDING_WINDOW: ``(i, i + k)`` for ``k = 1..window``, non-cyclic (DUSt3R ``swin-K-noncyclic``).
    """

    FIRST_TO_ALL = "first-to-all"
    ONE_REF = "oneref"
    COMPLETE = "complete"
    SLIDING_WINDOW = "swin"


def make_edges(
    num_frames: int,
    graph: SceneGraph | str = SceneGraph.FIRST_TO_ALL,
    *,
    window: int = 3,
    ref: int = 0,
    symmetrize: bool = False,
) -> torch.Tensor:
    """Build the list of frame pairs of a scene graph.

    Args:
        num_frames: number of frames ``F`` (``>= 2``).
        graph: a :class:`SceneGraph` or its string value.
        window: half-width ``K`` of :attr:`SceneGraph.SLIDING_WINDOW`.
        ref: reference frame of :attr:`SceneGraph.ONE_REF` (0-based).
        symmetrize: also append every reversed pair ``(j, i)`` (DUSt3R ``make_pairs(symmetrize=True)``).

    Returns:
        ``[P, 2]`` int64 tensor of 0-based frame indices, ordered by first then second index
        (reversed pairs, if any, follow in the same order).

    Raises:
        ValueError: if ``num_frames < 2``, ``window < 1`` or ``ref`` is out of range.
    """
    graph = SceneGraph(graph)
    if num_frames < 2:
        raise ValueError(f"a scene graph needs at least 2 frames, got {num_frames}")
    if graph is SceneGraph.FIRST_TO_ALL:
        pairs = [(0, j) for j in range(1, num_frames)]
    elif graph is SceneGraph.ONE_REF:
        if not 0 <= ref < num_frames:
            raise ValueError(f"reference frame {ref} is outside 0..{num_frames - 1}")
        pairs = [(ref, j) for j in range(num_frames) if j != ref]
    elif graph is SceneGraph.COMPLETE:
        pairs = [(i, j) for i in range(num_frames) for j in range(i + 1, num_frames)]
    else:
        if window < 1:
            raise ValueError(f"sliding-window size must be >= 1, got {window}")
        pairs = [(i, i + k) for i in range(num_frames) for k in range(1, window + 1) if i + k < num_frames]
    if symmetrize:
        pairs = pairs + [(j, i) for i, j in pairs]
    return torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2)
