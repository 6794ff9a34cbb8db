"""The installed packages are the ones requirements.lock pins (the suite's results hold for that set only).

An unpinned package that moved once broke a golden test between two runs of the same commit. This test names every
package whose installed version differs from the lock, with the command that fixes it. Outside ``make``'s .venv (your
own environment, another torch), set ``JOG3R_SKIP_LOCK_CHECK=1``.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


def read_lock(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` of every ``name==version`` line of a pip freeze file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"{path.name}: not a 'name==version' pin: {line!r}")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def drift(pins: dict[str, str]) -> list[str]:
    """One line per locked package that is missing or installed at another version."""
    out = []
    for name, want in sorted(pins.items()):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != want:
            out.append(f"{name}: locked {want}, installed {have or 'nothing'}")
    return out


def test_lock_parses_and_pins_the_direct_dependencies():
    pins = read_lock(LOCK)
    for name in ("numpy", "scipy", "opencv-python-headless", "roma", "gradio", "viser", "diffusers", "transformers"):
        assert name in pins, f"{name} is a dependency but not in requirements.lock"
    assert "torch" not in pins  # the Makefile's TORCH pins it (CPU wheel here, the user's CUDA build elsewhere)


@pytest.mark.skipif(bool(os.environ.get("JOG3R_SKIP_LOCK_CHECK")), reason="JOG3R_SKIP_LOCK_CHECK is set")
def test_installed_packages_match_the_lock():
    lines = drift(read_lock(LOCK))
    assert not lines, ("the environment drifted from requirements.lock (run `make install`; to move to newer "
                       "versions, `make lock` and commit the new lock):\n  " + "\n  ".join(lines))


def test_drift_names_a_moved_package(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# comment\nnumpy=={metadata.version('numpy')}\nScipy==0.0.1\nnot-a-package-xyz==1.0\n")
    lines = drift(read_lock(lock))
    assert lines == ["not-a-package-xyz: locked 1.0, installed nothing", f"scipy: locked 0.0.1, installed {metadata.version('scipy')}"]
    lock.write_text("numpy>=2\n")
    with pytest.raises(ValueError, match="not a 'name==version' pin"):
        read_lock(lock)
