"""``python -m jog3r`` = the ``jog3r`` command (see :mod:`jog3r.cli`)."""

from jog3r.cli import main

if __name__ == "__main__":
    main()
