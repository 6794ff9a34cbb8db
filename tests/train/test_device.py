"""The training step never draws random numbers on a device other than its generator's (issue 18).

CUDA refuses ``torch.randint(..., generator=cuda_gen)`` without ``device=`` ("Expected a 'cpu' device type for
generator but found 'cuda'"), which crashed the first GPU step. No CUDA or other accelerator generator can be made
on a CPU-only build, so the test runs real steps under a :class:`~torch.overrides.TorchFunctionMode` that applies
CUDA's rule to every call: a random draw given a ``generator`` must name its ``device``, equal to the generator's.
"""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

from jog3r.train.config import TrainConfig, TrainMode
from jog3r.train.trainer import Trainer


class StrictGeneratorDevice(TorchFunctionMode):
    """Raise like CUDA does when a generator's draw would land on the default (CPU) device implicitly."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        gen = kwargs.get("generator")
        name = getattr(func, "__name__", str(func))
        if isinstance(gen, torch.Generator) and name in ("randint", "randn", "rand", "randperm", "normal"):
            self.calls.append(name)
            if "device" not in kwargs or torch.device(kwargs["device"]) != gen.device:
                raise RuntimeError(f"{name} with a generator on {gen.device} but device={kwargs.get('device')!r}: "
                                   "a CUDA generator would crash here")
        return func(*args, **kwargs)


@pytest.mark.parametrize("mode", ["joint"])  # L_gen and L_rec draws
def test_train_step_passes_the_generator_device_to_every_draw(tmp_path, mode):
    cfg = TrainConfig(out=tmp_path / "run", preset="micro", mode=TrainMode(mode), data="synth", num_frames=4,
                      height=32, width=48, batch_size=1, warmup_steps=1, threads=1, device="cpu")
    trainer = Trainer(cfg)
    batch = trainer.batches(0, 0)
    strict = StrictGeneratorDevice()
    with strict:
        record = trainer.train_step([batch])
    assert "randint" in strict.calls and "randn" in strict.calls
    assert torch.isfinite(torch.tensor(record["loss_total"]))
