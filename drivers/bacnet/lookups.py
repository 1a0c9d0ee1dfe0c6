"""Cached class lookups for bacpypes3's ``inspect.getattr_static`` calls.

bacpypes3 calls ``inspect.getattr_static`` for every element a ``Sequence`` is built without (to
skip elements defined as properties), and again on reads and writes of local objects. On Python
3.11 each call walks the class's MRO twice, and that walk was a quarter of the CPU a simulated
building spends on a request (py-spy, 300 buildings). The class part of the answer depends only
on the class and the attribute, so it is computed once per pair; the instance part is looked up
every time, exactly as ``inspect`` does. The result is the same as ``inspect.getattr_static``'s
for every object that is not itself a class (classes go to ``inspect`` unchanged), provided
classes are not given new attributes after their first lookup (bacpypes3's are built at import,
and its dynamic ``SequenceOf``/``ArrayOf`` classes are built once per signature).

Only the ``inspect`` name inside the bacpypes3 modules listed below is replaced; the standard
library's module is left alone.
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

PATCHED_MODULES = ("bacpypes3.constructeddata", "bacpypes3.local.object", "bacpypes3.service.object")

_sentinel: Any = getattr(inspect, "_sentinel", None)
_check_class: Any = getattr(inspect, "_check_class", None)
_check_instance: Any = getattr(inspect, "_check_instance", None)
_shadowed_dict: Any = getattr(inspect, "_shadowed_dict", None)

_class_lookups: dict[tuple[type, str], tuple[Any, bool, bool]] = {}
"""(class, attribute) -> (the class's answer or _sentinel, whether the instance dict counts,
whether the class's answer is a data descriptor and so wins over the instance dict)."""


def _class_lookup(klass: type, attr: str) -> tuple[Any, bool, bool]:
    key = (klass, attr)
    found = _class_lookups.get(key)
    if found is None:
        dict_attr = _shadowed_dict(klass)
        instance_dict_counts = dict_attr is _sentinel or type(dict_attr) is types.MemberDescriptorType
        result = _check_class(klass, attr)
        data_descriptor = False
        if result is not _sentinel:
            kind = type(result)
            data_descriptor = _check_class(kind, "__get__") is not _sentinel and (
                _check_class(kind, "__set__") is not _sentinel or _check_class(kind, "__delete__") is not _sentinel
            )
        found = _class_lookups[key] = (result, instance_dict_counts, data_descriptor)
    return found


def getattr_static(obj: Any, attr: str, default: Any = _sentinel) -> Any:
    """``inspect.getattr_static`` with the class part of the lookup cached."""
    if isinstance(obj, type):
        return inspect.getattr_static(obj, attr, default)
    klass_result, instance_dict_counts, data_descriptor = _class_lookup(type(obj), attr)
    if instance_dict_counts and not data_descriptor:
        instance_result = _check_instance(obj, attr)
        if instance_result is not _sentinel:
            return instance_result
    if klass_result is not _sentinel:
        return klass_result
    if default is not _sentinel:
        return default
    raise AttributeError(attr)


class _InspectWithCachedLookups(types.ModuleType):
    """``inspect`` as the patched modules see it: everything as is, but ``getattr_static``."""

    getattr_static = staticmethod(getattr_static)

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


def supported() -> bool:
    """Whether this Python's ``inspect`` has the helpers the cached lookup is built from."""
    return None not in (_sentinel, _check_class, _check_instance, _shadowed_dict)


def install() -> None:
    """Point the bacpypes3 modules' ``inspect`` at the cached lookup (idempotent; a no-op on a
    Python whose ``inspect`` is built differently)."""
    if not supported():
        return
    shim = _InspectWithCachedLookups("inspect")
    for name in PATCHED_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "inspect", None) is inspect:
            module.inspect = shim  # type: ignore[attr-defined]
