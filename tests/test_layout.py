"""The package's layout rules, checked mechanically: import direction (parsed with ``ast``, no import runs),
vocabularies the app shares with the library, and a docstring on every public function and class."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jog3r"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (module level or inside functions), relative imports resolved."""
    name, found = _module_name(path), set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if node.module and not node.level)
    return found


EDGES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _broken(sources: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(f"{m} -> {i}" for m, imported in EDGES.items() if _within(m, sources) and not _within(m, allowed)
                  for i in imported if _within(i, forbidden))


def test_the_package_never_imports_the_app():
    assert _broken(("jog3r",), ("app",)) == []


def test_geometry_imports_nothing_of_jog3r_outside_itself():
    outside = sorted({i for m, imported in EDGES.items() if _within(m, ("jog3r.geometry",)) for i in imported
                      if _within(i, ("jog3r",)) and not _within(i, ("jog3r.geometry",))})
    assert outside == []


def test_dit_and_recon_share_only_nn():
    """The STDiT and the DUSt3R decoder never import each other; their shared blocks live in :mod:`jog3r.nn`, which
    imports nothing else of ``jog3r``."""
    assert _broken(("jog3r.recon",), ("jog3r.dit",)) == []
    assert _broken(("jog3r.dit",), ("jog3r.recon",)) == []
    outside = sorted({i for m, imported in EDGES.items() if _within(m, ("jog3r.nn",)) for i in imported
                      if _within(i, ("jog3r",)) and not _within(i, ("jog3r.nn",))})
    assert outside == []
    for user in ("jog3r.recon.layers", "jog3r.dit.stdit"):  # both really use the shared blocks
        assert {"jog3r.nn.attention", "jog3r.nn.mlp"} <= EDGES[user]


def test_viz_and_metrics_never_load_models():
    assert _broken(("jog3r.viz", "jog3r.metrics"), ("jog3r.model", "jog3r.pipeline")) == []


def test_io_imports_no_viz_pipeline_or_train():
    assert _broken(("jog3r.io",), ("jog3r.viz", "jog3r.pipeline", "jog3r.train")) == []


def test_align_imports_no_viz_pipeline_or_train():
    assert _broken(("jog3r.align",), ("jog3r.viz", "jog3r.pipeline", "jog3r.train")) == []


def test_only_the_cli_starts_training():
    assert _broken(("jog3r",), ("jog3r.train",), allowed=("jog3r.train", "jog3r.cli")) == []


def _replace_calls(path: Path) -> list[str]:
    """``os.replace`` / ``os.rename`` calls (and their bare imported names) in ``path``, as ``"module:line"``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("replace", "rename") and isinstance(node.value, ast.Name) \
                and node.value.id == "os":
            found.append(f"{_module_name(path)}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and \
                any(a.name in ("replace", "rename") for a in node.names):
            found.append(f"{_module_name(path)}:{node.lineno}")
    return found


def test_only_io_atomic_moves_files_into_place():
    """Every atomic write goes through :mod:`jog3r.io.atomic`: no other module calls ``os.replace`` itself."""
    calls = [c for p in sorted(PACKAGE.rglob("*.py")) if _module_name(p) != "jog3r.io.atomic"
             for c in _replace_calls(p)]
    assert calls == []
    assert _replace_calls(PACKAGE / "io" / "atomic.py")  # the rule sees the calls where they are


def test_the_app_shares_the_library_vocabularies():
    """The app's lists of choices are the library's: samplers, V2C methods, MEt3R backbones, training modes."""
    from app.jobs import TRAIN_MODES
    from app.tabs.consistency import BACKBONES
    from app.tabs.generate import SAMPLERS as APP_SAMPLERS
    from jog3r.diffusion import SAMPLERS
    from jog3r.jobs import MATCHES
    from jog3r.train.config import TrainMode

    assert set(APP_SAMPLERS.values()) == set(SAMPLERS)
    assert set(TRAIN_MODES) == {m.value for m in TrainMode}
    from jog3r.jobs import BACKBONES as LIBRARY_BACKBONES
    assert list(BACKBONES.values()) == list(LIBRARY_BACKBONES) == ["taef2", "rgb", "dinov2"]
    assert list(APP_SAMPLERS) == ["DDIM", "DPM-Solver++", "IDDPM (ancestral, needs many steps)"]
    source = (ROOT / "app" / "tabs" / "estimate.py").read_text()
    assert "MATCHES" in source and set(MATCHES) == {"sift", "none"}
    from app.tabs.estimate import FIT
    from jog3r.jobs import FITS
    assert list(FIT) == list(FITS) == ["crop", "pad"]


def test_the_vocabularies_are_the_enums_values():
    """Each tuple of choices is its ``StrEnum``'s values, in order, and a member is its plain string everywhere a
    choice is written (``str``, f-strings, JSON, dict keys), so CLI choices, dropdowns and JSON files are unchanged."""
    import json

    from jog3r.diffusion import DEFAULT_STEPS, SAMPLERS, SamplerName
    from jog3r.jobs import BACKBONES, FITS, MATCHES, Backbone, Fit, Matches
    from jog3r.types import MATCHES as TYPES_MATCHES

    for enum_class, vocabulary, values in ((Matches, MATCHES, ("sift", "none")), (Fit, FITS, ("crop", "pad")),
                                           (SamplerName, SAMPLERS, ("iddpm", "ddim", "dpmsolver++")),
                                           (Backbone, BACKBONES, ("taef2", "rgb", "dinov2"))):
        assert vocabulary == tuple(m.value for m in enum_class) == values
        assert all(type(v) is str for v in vocabulary)
        for member in enum_class:
            assert member == member.value and type(str(member)) is str and str(member) == f"{member}" == member.value
            assert json.dumps({"choice": member}) == json.dumps({"choice": member.value})
    assert TYPES_MATCHES is MATCHES
    assert {DEFAULT_STEPS[s] for s in SamplerName} == set(DEFAULT_STEPS.values())


def test_functions_take_the_enum_or_its_string():
    """A member and its string give the same result, stored as the plain string."""
    from types import SimpleNamespace

    from jog3r.diffusion import Sampler, SamplerName, sampler_timesteps
    from jog3r.jobs import Fit, load_video

    for member in SamplerName:
        assert sampler_timesteps(member, 10) == sampler_timesteps(member.value, 10)
        assert type(Sampler(member, 10).sampler) is str and Sampler(member, 10).sampler == member.value
    clip = ROOT / "tests" / "data" / "realestate10k" / "clips16_384x256" / "0bf152ef84195293.mp4"
    pipe = SimpleNamespace(resolution=(32, 48), num_frames=4)  # all load_video reads of a pipeline
    for member in Fit:
        video, info = load_video(pipe, clip, fit=member)
        plain, plain_info = load_video(pipe, clip, fit=member.value)
        assert type(info.fit) is str and info == plain_info
        assert (video.frames == plain.frames).all()
    with pytest.raises(ValueError, match="fit must be"):
        load_video(pipe, clip, fit="stretch")


def test_load_video_returns_a_typed_record():
    """``load_video``'s info is a frozen :class:`VideoInfo` holding ``read_video``'s fields (the size made the
    model's) plus the fit, not a dict."""
    import dataclasses
    from types import SimpleNamespace

    from jog3r.io.video import read_video
    from jog3r.jobs import VideoInfo, load_video

    clip = ROOT / "tests" / "data" / "realestate10k" / "clips16_384x256" / "0bf152ef84195293.mp4"
    video, info = load_video(SimpleNamespace(resolution=(32, 48), num_frames=4), clip)
    _, read = read_video(clip, num_frames=4, size=(32, 48))
    assert isinstance(info, VideoInfo) and info.size == video.size == (32, 48)
    assert {k: v for k, v in info.as_dict().items() if k in read} == read
    assert (info.fit, info.crop_kept, info.files, info.order) == ("crop", 1.0, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.message = "changed"


def test_the_cli_and_eval_choices_are_the_library_vocabularies():
    """tyro's ``Literal`` choices of ``jog3r v2c / t2v / met3r`` and ``jog3r eval`` are built from the library's
    tuples (``Literal[*TUPLE]``), never copied: the same values, in the same order."""
    import typing

    from jog3r import cli, eval as eval_module
    from jog3r.diffusion import SAMPLERS
    from jog3r.jobs import BACKBONES, FITS, MATCHES

    def choices(cls, name):
        return typing.get_args(typing.get_type_hints(cls)[name])

    assert choices(cli.V2C, "matches") == choices(eval_module.EvalConfig, "matches") == MATCHES
    assert choices(cli.V2C, "fit") == FITS == ("crop", "pad")
    assert choices(cli.T2V, "sampler") == choices(cli.T2VC, "sampler") == SAMPLERS
    assert choices(cli.Met3R, "backbone") == BACKBONES
    for path in (PACKAGE / "cli.py", PACKAGE / "eval.py"):  # no hand-copied list of these values left
        source = path.read_text()
        for vocabulary in (MATCHES, FITS, SAMPLERS, BACKBONES):
            assert "Literal[" + ", ".join(f'"{v}"' for v in vocabulary) + "]" not in source, (path.name, vocabulary)


def _public_api():
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="jog3r."):
        if ".train" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module.__name__}.{name}", obj


def test_every_public_function_and_class_has_a_docstring():
    missing = [name for name, obj in _public_api() if not (obj.__doc__ or "").strip()]
    assert missing == []
