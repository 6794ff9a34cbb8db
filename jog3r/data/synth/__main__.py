"""Command line: write a synthetic RealEstate10K-layout dataset.

Example::

    python -m jog3r.data.synth --out data/synth --num 1000 --size 128 192 --frames 16 --workers 2
    python -m jog3r.data.synth --out /tmp/s --num 8 --contact-sheet docs/images/contact_sheet.jpg
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Literal

import tyro

from jog3r.data.synth.generate import SynthConfig, generate_clip
from jog3r.data.synth.writer import contact_sheet, write_dataset


@dataclasses.dataclass
class Args:
    """Generate synthetic posed static-scene clips (rooms, houses) with depth and captions."""

    out: Path
    """Output folder (RealEstate10K layout: <id>.mp4, <id>.txt, depth/<id>.npz, captions.json)."""
    num: int = 100
    """Number of clips."""
    size: tuple[int, int] = (128, 192)
    """Frame size H W in pixels."""
    frames: int = 16
    """Frames per clip."""
    start_seed: int = 0
    """Seed of the first clip (clip i uses start_seed + i)."""
    workers: int = 1
    """Parallel processes."""
    video: Literal["mp4", "frames"] = "mp4"
    """Store frames as an H.264 mp4 or as PNG files in frames/<id>/."""
    outdoor_prob: float = 0.12
    """Probability of an outdoor scene."""
    contact_sheet: Path | None = None
    """Also save a contact sheet (first 8 clips x 4 frames + depth) to this JPEG path."""


def main(args: Args) -> None:
    """Run the generator with the command-line arguments."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = SynthConfig(height=args.size[0], width=args.size[1], num_frames=args.frames,
                         outdoor_prob=args.outdoor_prob)
    write_dataset(args.out, args.num, config, start_seed=args.start_seed, video=args.video, workers=args.workers)
    if args.contact_sheet is not None:
        clips = [generate_clip(args.start_seed + i, config) for i in range(min(8, args.num))]
        print(f"contact sheet: {contact_sheet(clips, args.contact_sheet)}")
    print(f"wrote {args.num} clips to {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
