"""Every public function and class of jog3r.data has a docstring (guideline 14: catch drift mechanically)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import jog3r.data


def _public_objects():
    for info in pkgutil.walk_packages(jog3r.data.__path__, "jog3r.data."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        assert module.__doc__, f"{info.name} has no module docstring"
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{info.name}.{name}", obj


def test_public_api_is_documented():
    missing = [name for name, obj in _public_objects() if not inspect.getdoc(obj)]
    assert not missing, missing
    assert len(list(_public_objects())) > 40
