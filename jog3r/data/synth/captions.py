"""RealEstate10K-style captions from a synthetic scene's content.

RealEstate10K captions (the ones JOG3R trains with) are short descriptions of the room and a couple of salient
objects: "a living room with a couch and a television", "a kitchen with white cabinets and a refrigerator".
"""

from __future__ import annotations

import numpy as np

from jog3r.data.synth.scene import Scene

_ARTICLE_FREE = {"chairs", "windows", "hardwood floors", "tile floors", "carpet", "kitchen cabinets", "trees",
                 "pictures on the wall"}
_PRIORITY = ["bed", "couch", "fireplace", "dining table", "kitchen cabinets", "island", "refrigerator", "television",
             "desk", "bathtub", "toilet", "sink", "swimming pool", "a swimming pool", "a house", "coffee table",
             "armchair", "dresser", "bookshelf", "ceiling fan", "computer", "chairs", "mirror", "sideboard", "rug",
             "lamp", "plant", "windows", "a window", "pictures on the wall", "a door", "trees", "a lawn",
             "hardwood floors", "tile floors", "carpet", "table"]


def _phrase(label: str) -> str:
    if label in _ARTICLE_FREE or label.startswith(("a ", "an ")):
        return label
    return ("an " if label[0] in "aeiou" else "a ") + label


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def make_caption(scene: Scene, rng: np.random.Generator) -> str:
    """A caption naming the room type and up to three salient objects, e.g. "a bedroom with a bed and a lamp".

    Args:
        scene: the scene (``room_type``, ``labels``, ``adjoining`` are used).
        rng: random generator choosing the template and the number of objects.

    Returns:
        A lower-case caption without a final period.
    """
    labels = sorted(set(scene.labels), key=lambda s: _PRIORITY.index(s) if s in _PRIORITY else len(_PRIORITY))
    k = int(rng.integers(1, 4))
    objects = [_phrase(s) for s in labels[:k]]
    if scene.room_type == "house exterior":
        subject = str(rng.choice(["the exterior of a house", "a house with a yard", "the backyard of a house",
                                  "a view of a house"]))
        objects = [o for o in objects if o != "a house"]
        if not objects:
            return subject
        return subject + (" and " if " with " in subject else " with ") + _join(objects)
    room = scene.room_type
    article = "an" if room[0] in "aeiou" else "a"
    if room == "empty room" or not objects:
        subject = "an empty room" if room == "empty room" else f"{article} {room}"
        objects = objects or [_phrase("hardwood floors")]
        return f"{subject} with {_join(objects)}"
    template = int(rng.integers(4))
    text = f"{article} {room} with {_join(objects)}"
    if template == 1:
        text = f"a view of {text}"
    elif template == 2 and scene.adjoining:
        text = f"{article} {room} leading to {'an' if scene.adjoining[0] in 'aeiou' else 'a'} {scene.adjoining}"
    elif template == 3 and len(objects) > 1:
        text = f"{article} {room} that has {_join(objects)}"
    return text
