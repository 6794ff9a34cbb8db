"""Docstrings of the io / video / export public API: Google style, and every parameter named as in the code."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

import jog3r.io.colmap
import jog3r.io.export_bundle
import jog3r.io.nerfstudio
import jog3r.io.re10k
import jog3r.io.tum
import jog3r.io.types
import jog3r.io.video
import jog3r.io.scene

MODULES = [jog3r.io.re10k, jog3r.io.nerfstudio, jog3r.io.colmap, jog3r.io.tum, jog3r.io.types,
           jog3r.io.export_bundle, jog3r.io.video, jog3r.io.scene]


def _section(doc: str, title: str) -> list[str]:
    """Names documented in a Google-style section (``    name: text`` lines one level under the title)."""
    match = re.search(rf"^(\s*){title}:\n((?:\1    .*\n|\s*\n)+)", doc + "\n", flags=re.M)
    if not match:
        return []
    indent = match.group(1) + "    "
    return re.findall(rf"^{indent}(\w+)(?: \(.*?\))?:", match.group(2), flags=re.M)


def _public(module):
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj


ITEMS = [item for module in MODULES for item in _public(module)]


def test_every_module_states_its_convention():
    for module in MODULES:
        assert module.__doc__ and len(module.__doc__.splitlines()) >= 3, module.__name__
    assert len(ITEMS) >= 25


@pytest.mark.parametrize(("name", "obj"), ITEMS, ids=[name for name, _ in ITEMS])
def test_public_docstrings(name, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{name} has no docstring"
    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj):
            fields = [f.name for f in dataclasses.fields(obj)]
            assert _section(doc, "Attributes") == fields, f"{name}: Attributes must list {fields}"
        return
    params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
    if len(params) > 1 or inspect.signature(obj).return_annotation not in ("None", None):
        documented = _section(doc, "Args")
        if documented or len(params) > 2:
            assert documented == params, f"{name}: Args {documented} != signature {params}"
            section = "Yields:" if inspect.isgeneratorfunction(obj) else "Returns:"  # Google style for generators
            assert section in doc, f"{name}: no {section[:-1]} section"
