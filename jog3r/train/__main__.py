"""``python -m jog3r.train`` (also ``jog3r train``): run the joint fine-tune from the command line.

Examples::

    python -m jog3r.train --preset tiny --mode joint --data synth --steps 2000 --out runs/tiny
    python -m jog3r.train --preset tiny --mode joint --data synth --steps 4000 --out runs/tiny --resume
        # continue a killed run exactly: same options (they are checked against train_config.json), more --steps ok
"""

from __future__ import annotations

import logging
import os

import tyro

from jog3r.train.config import TrainConfig
from jog3r.train.trainer import train


def main(argv: list[str] | None = None) -> None:
    """Parse a :class:`TrainConfig` from ``argv`` and train."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = tyro.cli(TrainConfig, args=argv, description=__doc__)
    final = train(config)
    if os.environ.get("RANK", "0") == "0":
        logging.getLogger("jog3r.train").info("final model written to %s", final)


if __name__ == "__main__":
    # through `jog3r train`'s wrapper: a bad option or input is one "error: ..." line, as there
    import sys

    from jog3r.cli import main as cli_main

    cli_main(["train", *sys.argv[1:]])
