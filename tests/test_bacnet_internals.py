"""The contract of drivers/bacnet/bacpypes3_internals.py with bacpypes3: every internal it relies on
is there and behaves as assumed, and the installed bacpypes3 is the version the module was written
for. These tests fail, never skip: a failure here means bacpypes3 moved, and the module must be
checked against the new version before WRITTEN_FOR is changed."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from typing import Any

import bacpypes3.constructeddata
import pytest
from bacpypes3.apdu import (
    APCISequence,
    ConfirmedRequestPDU,
    ReadPropertyMultipleRequest,
    SimpleAckPDU,
    WhoIsRequest,
)
from bacpypes3.app import Application
from bacpypes3.basetypes import OptionalUnsigned, PriorityValue, PropertyValue, ReadAccessSpecification
from bacpypes3.local.analog import AnalogValueObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, Real

from drivers.bacnet import bacpypes3_internals as internals
from drivers.bacnet import services
from drivers.bacnet.client import BacnetClient, default_local_address
from drivers.bacnet.profile import ObjectRef
from drivers.bacnet.simobjects import SimLightingOutput
from tests.test_bacnet_support import building, running

MISSING = object()


def test_the_installed_bacpypes3_is_the_one_the_internals_were_written_for() -> None:
    assert internals.installed_version() == internals.WRITTEN_FOR
    assert internals.problems(internals.WRITTEN_FOR) == dict.fromkeys(internals.FAST_PATHS)


def test_install_turns_every_fast_path_on_and_is_not_an_import_side_effect() -> None:
    import drivers.bacnet  # noqa: F401  (the plugin: importing it installs nothing)

    assert internals.install() == dict.fromkeys(internals.FAST_PATHS, True)
    assert all(internals.enabled(name) for name in internals.FAST_PATHS)
    for name in internals.LOOKUP_MODULES:  # installed: the bacpypes3 modules see the cached lookup
        assert importlib.import_module(name).inspect.getattr_static is internals.getattr_static
    assert APCISequence.decode.__func__ is internals.memo_decode  # type: ignore[attr-defined]
    assert inspect.getattr_static is not internals.getattr_static  # the standard library's is left alone


def test_another_version_turns_the_fast_paths_off_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    found = internals.problems("0.0.999")
    assert set(found) == set(internals.FAST_PATHS)
    assert all(reason is not None and "0.0.999" in reason and internals.WRITTEN_FOR in reason for reason in found.values())
    with caplog.at_level(logging.WARNING, logger=internals.__name__):
        assert internals.turn_on(found) == dict.fromkeys(internals.FAST_PATHS, False)
    assert [r.getMessage() for r in caplog.records] == [
        f"bacpypes3 fast path {name!r} is off: {reason}" for name, reason in found.items()
    ]


def test_the_inspect_helpers_the_cached_lookup_is_built_from_exist() -> None:
    for name in ("_sentinel", "_check_class", "_check_instance", "_shadowed_dict"):
        assert hasattr(inspect, name), name
    for name in internals.LOOKUP_MODULES:
        source = inspect.getsource(importlib.import_module(name))
        assert "import inspect" in source and "inspect.getattr_static(" in source, name


def _answer(lookup: Any, obj: Any, attr: str, *default: Any) -> Any:
    try:
        return ("value", lookup(obj, attr, *default))
    except AttributeError as exc:
        return ("AttributeError", str(exc))


async def test_the_cached_lookup_answers_as_inspect_does() -> None:  # async: bacpypes3's local objects want a loop
    value = PropertyValue(propertyIdentifier="presentValue", value=bacpypes3.constructeddata.Any(Real(1.5)))
    value.priority = 10
    samples = [
        value,
        ReadAccessSpecification(objectIdentifier="analog-value,1", listOfPropertyReferences=[]),
        AnalogValueObject(objectIdentifier="analog-value,1", objectName="av", presentValue=2.0),
        DeviceObject(objectIdentifier="device,7", objectName="d", vendorIdentifier=999),
        PropertyValue,  # a class: handed to inspect unchanged
    ]
    for obj in samples:
        klass = obj if isinstance(obj, type) else type(obj)
        names = set(getattr(klass, "_elements", {})) | {"__dict__", "__class__", "encode", "no_such_thing", "_debug"}
        names |= set(vars(obj)) if hasattr(obj, "__dict__") else set()
        for attr in sorted(names):
            for default in ((), (None,), (MISSING,)):
                for _ in range(2):  # the second time from the cache
                    assert _answer(internals.getattr_static, obj, attr, *default) == _answer(
                        inspect.getattr_static, obj, attr, *default
                    ), (klass.__name__, attr)


def _encoded_rpm(invoke_id: int, source: str) -> APCISequence:
    reads = [(services.object_id(ObjectRef(kind="lighting-output", instance=n)), "presentValue") for n in (1, 2, 3)]
    request = services.rpm_request(reads, Address("127.0.0.9:47808"))
    request.apduInvokeID = invoke_id
    request.pduSource = Address(source)
    return request


def test_decode_is_a_classmethod_and_the_memo_decodes_as_bacpypes3_does() -> None:
    internals.install()
    assert isinstance(APCISequence.__dict__["decode"], classmethod)
    first = APCISequence.decode(_encoded_rpm(3, "127.0.0.1:40001"))
    second = APCISequence.decode(_encoded_rpm(4, "127.0.0.1:40002"))
    plain = internals.plain_decode(_encoded_rpm(4, "127.0.0.1:40002"))  # bacpypes3's own
    assert isinstance(second, ReadPropertyMultipleRequest)
    assert second.apduInvokeID == 4 and str(second.pduSource) == "127.0.0.1:40002"
    assert first.apduInvokeID == 3 and str(first.pduSource) == "127.0.0.1:40001"
    assert second is not first
    assert second.encode().pduData == plain.encode().pduData
    assert second.apdu_contents() == plain.apdu_contents()
    second.pduDestination = Address("127.0.0.5:47808")  # the copies' headers are their own
    assert first.pduDestination != second.pduDestination
    before = internals.memo_size()
    who_is = WhoIsRequest(destination=Address("127.255.255.255:47808")).encode()
    for _ in range(3):  # other kinds are not memoised
        assert isinstance(APCISequence.decode(who_is), WhoIsRequest)
    assert internals.memo_size() == before


async def test_the_request_table_works_as_claim_invoke_id_assumes() -> None:
    client = BacnetClient(default_local_address("127.0.0.1"))
    try:
        await client.ready()
        app: Any = client.app
        assert isinstance(app._requests, dict) and isinstance(app.next_invoke_id, int)
        destination = Address("127.0.0.99:47808")
        # bacpypes3's own request enters (request, future) under its destination ...
        theirs = ConfirmedRequestPDU(destination=destination)
        theirs.apduService = 12
        their_future = app.request(theirs)
        assert [pdu for pdu, _ in app._requests[destination]] == [theirs]
        # ... and ours takes another id from the same counter, and leaves when done
        ours = ConfirmedRequestPDU(destination=destination)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        invoke = internals.claim_invoke_id(app, ours, future, lambda _: False)
        assert invoke is not None and invoke != theirs.apduInvokeID and ours.apduInvokeID == invoke
        assert app.next_invoke_id == (invoke + 1) % 256
        late = SimpleAckPDU(context=ours)
        late.pduSource = destination
        assert not internals.given_up(app, late)
        future.cancel()
        assert internals.given_up(app, late)  # cancelled, not yet taken out of the table
        await asyncio.sleep(0)
        assert [pdu for pdu, _ in app._requests[destination]] == [theirs]
        their_future.cancel()
        await asyncio.sleep(0)
        assert destination not in app._requests
    finally:
        client.close()


async def test_a_link_layers_sockets_are_where_the_internals_find_them() -> None:
    client = BacnetClient(default_local_address("127.0.0.1"))
    try:
        servers = [layer.server for layer in client.app.link_layers.values()]
        assert len(servers) == 1 and servers[0].local_transport is None  # bound by tasks of bacpypes3's own
        assert servers[0]._transport_tasks and all(isinstance(t, asyncio.Task) for t in servers[0]._transport_tasks)
        await client.ready()
        assert servers[0]._transport_tasks == [] and client.direct is not None
        local = internals.local_endpoint(client.app)
        assert local is not None and local.socket is not None
        host, port = local.socket.getsockname()
        assert host == "127.0.0.1"
        broadcast = internals.broadcast_endpoint(client.app)  # the subnet's broadcasts to its port
        assert broadcast is not None and broadcast.socket is not None
        assert broadcast.socket.getsockname() == ("127.255.255.255", port)
        assert internals.endpoints(client.app) == [local, broadcast]
        heard: list[bytes] = []
        local.intercept(lambda received: lambda data, addr: heard.append(data))
        local.protocol.datagram_received(b"\x81\x0a\x00\x04", ("127.0.0.2", 47808))  # type: ignore[attr-defined]
        assert heard == [b"\x81\x0a\x00\x04"]
    finally:
        client.close()


async def test_a_devices_broadcast_socket_and_live_cov_subscriptions() -> None:
    async with running(building("tower", cov_lifetime_s=60)) as (host, drivers, _):
        device = host.devices["tower"]
        assert device.app is not None
        broadcast = internals.broadcast_endpoint(device.app)
        assert broadcast is not None and broadcast.socket is not None
        assert broadcast.socket.getsockname() == ("127.255.255.255", 47808)
        driver = drivers["tower"]
        driver.subscribe(lambda reading: None)
        await driver.connect()
        for _ in range(100):
            if len(device.cov_subscriptions()) == 4:
                break
            await asyncio.sleep(0.02)
        subscriptions = device.cov_subscriptions()
        assert sorted(s.monitored for s in subscriptions) == [f"lighting-output,{i}" for i in range(1, 5)]
        assert {s.lifetime_s for s in subscriptions} == {60}
        assert all(s.subscriber.startswith("127.0.0.1:") for s in subscriptions)


async def test_choices_arrays_and_stored_elements() -> None:
    assert float(internals.chosen(PriorityValue(real=Real(42.0)))) == 42.0
    assert internals.chosen(OptionalUnsigned(unsigned=7)) == 7
    assert PriorityValue(null=()).null is not None
    assert internals.element_type(services.ArrayOfObjectIdentifier) is ObjectIdentifier
    stored = internals.stored_elements(SimLightingOutput)
    assert {"presentValue", "priorityArray", "trackingValue"} <= stored
    obj = AnalogValueObject(objectIdentifier="analog-value,1", objectName="av", presentValue=2.0)
    internals.store_quietly(obj, "presentValue", Real(3.0))  # a stored value lives in the instance dict
    assert obj.__dict__["presentValue"] == 3.0 and obj.presentValue == 3.0


def test_application_has_the_hooks_the_client_overrides() -> None:
    for name in ("confirmation", "do_IAmRequest", "do_UnconfirmedCOVNotificationRequest",
                 "do_ConfirmedCOVNotificationRequest", "request", "_request_done"):
        assert callable(getattr(Application, name, None)), name
