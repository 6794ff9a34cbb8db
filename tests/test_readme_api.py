"""The README's Python API example runs as written (on the micro model and a committed clip), so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "realestate10k" / "clips16_384x256" / "0bf152ef84195293.mp4"


def _readme_python_example() -> str:
    """The first ```python block after the README's ``Python:`` line."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^Python:\n+```python\n(.*?)^```", readme, flags=re.S | re.M)
    assert match, "README.md has no ```python block after 'Python:'"
    return match.group(1)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared CPU the alignment's many small ops are ~20x faster than with contended threads
    (the test checks shapes and names, not numbers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_readme_python_example_runs(micro_model_dir, one_thread, capsys):
    code = _readme_python_example()
    for needle in ("JOG3RPipeline.from_pretrained()", '"clip.mp4"'):  # the substitutions below must still apply
        assert needle in code, needle
    code = code.replace("JOG3RPipeline.from_pretrained()", f"JOG3RPipeline.from_pretrained({str(micro_model_dir)!r})")
    code = code.replace('"clip.mp4"', repr(str(CLIP)))
    scope: dict = {}
    exec(compile(code, "README.md (Python example)", "exec"), scope)
    assert scope["out"].reconstruction.cam2world.shape == (4, 4, 4)
    assert scope["paper"].method == "JOG3R V2C (paper)"
    assert scope["t2v"].video.num_frames == 4 and scope["t2v"].cascade_reconstruction is not None
    assert isinstance(scope["score"], float)
    assert scope["out"].method in capsys.readouterr().out
