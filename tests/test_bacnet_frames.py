"""Finding the APDU in a BACnet/IP frame without decoding it (floor client and simulators)."""

from __future__ import annotations

from bacpypes3.apdu import SimpleAckPDU
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Real

import drivers.bacnet  # noqa: F401
from drivers.bacnet import services
from drivers.bacnet.frames import apdu_offset, frame, is_write_request, reply_invoke_id, with_invoke_id
from drivers.bacnet.profile import ObjectRef

ADDRESS = Address("127.0.0.9:47808")
REF = ObjectRef(kind="lighting-output", instance=1)


def test_writes_are_told_from_reads() -> None:
    write = services.Write("f1", REF, "presentValue", Real(50.0), 10)
    wpm = frame(services.wpm_request([write], ADDRESS), 7)
    rpm = frame(services.rpm_request([(services.object_id(REF), "presentValue")], ADDRESS), 8)
    assert is_write_request(wpm) and not is_write_request(rpm)
    assert not is_write_request(b"\x81\x0a\x00\x04") and not is_write_request(b"not bacnet")
    # a network-layer message carries no APDU
    assert apdu_offset(b"\x81\x0a\x00\x07\x01\x80\x00") is None


def test_reply_invoke_id_with_and_without_a_source_specifier() -> None:
    ack = SimpleAckPDU(service_choice=16, invoke_id=42)
    body = ack.encode().pduData
    plain = b"\x81\x0a" + (6 + len(body)).to_bytes(2, "big") + b"\x01\x00" + bytes(body)
    routed_npdu = b"\x01\x08" + b"\x00\x05" + b"\x01" + b"\x2a"  # SNET 5, SLEN 1, SADR 0x2a
    routed = b"\x81\x0a" + (4 + len(routed_npdu) + len(body)).to_bytes(2, "big") + routed_npdu + bytes(body)
    assert reply_invoke_id(plain) == 42
    assert reply_invoke_id(routed) == 42


def test_a_frame_made_before_the_beat_takes_its_invoke_id_at_the_beat() -> None:
    write = services.Write("f1", REF, "presentValue", Real(50.0), 10)
    for invoke_id in (0, 1, 77, 255):
        ahead = frame(services.wpm_request([write], ADDRESS), 0)
        assert with_invoke_id(ahead, invoke_id) == frame(services.wpm_request([write], ADDRESS), invoke_id)
