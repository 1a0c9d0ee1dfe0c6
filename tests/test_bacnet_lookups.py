"""The cached getattr_static gives inspect's answers on bacpypes3's own objects."""

from __future__ import annotations

import inspect
from typing import Any

import bacpypes3.constructeddata
import pytest
from bacpypes3.basetypes import PropertyValue, ReadAccessSpecification
from bacpypes3.local.analog import AnalogValueObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.primitivedata import Real

from drivers.bacnet import lookups

MISSING = object()


def answer(lookup: Any, obj: Any, attr: str, *default: Any) -> Any:
    try:
        return ("value", lookup(obj, attr, *default))
    except AttributeError as exc:
        return ("AttributeError", str(exc))


def samples() -> list[Any]:
    value = PropertyValue(propertyIdentifier="presentValue", value=bacpypes3.constructeddata.Any(Real(1.5)))
    value.priority = 10
    return [
        value,
        ReadAccessSpecification(objectIdentifier="analog-value,1", listOfPropertyReferences=[]),
        AnalogValueObject(objectIdentifier="analog-value,1", objectName="av", presentValue=2.0),
        DeviceObject(objectIdentifier="device,7", objectName="d", vendorIdentifier=999),
        PropertyValue,  # a class: handed to inspect unchanged
    ]


@pytest.mark.skipif(not lookups.supported(), reason="this Python's inspect has other helpers")
async def test_same_answers_as_inspect() -> None:  # async: bacpypes3's local objects want a loop
    for obj in samples():
        klass = obj if isinstance(obj, type) else type(obj)
        names = set(getattr(klass, "_elements", {})) | {"__dict__", "__class__", "encode", "no_such_thing", "_debug"}
        names |= set(vars(obj)) if hasattr(obj, "__dict__") else set()
        for attr in sorted(names):
            for default in ((), (None,), (MISSING,)):
                for _ in range(2):  # the second time from the cache
                    assert answer(lookups.getattr_static, obj, attr, *default) == answer(
                        inspect.getattr_static, obj, attr, *default
                    ), (klass.__name__, attr)


def test_installed_in_bacpypes3_only() -> None:
    import drivers.bacnet  # noqa: F401  (installs)

    if lookups.supported():
        assert bacpypes3.constructeddata.inspect.getattr_static is lookups.getattr_static
        assert bacpypes3.constructeddata.inspect.isclass is inspect.isclass
    assert inspect.getattr_static is not lookups.getattr_static
