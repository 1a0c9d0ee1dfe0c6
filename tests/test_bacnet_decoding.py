"""Memoised decoding gives what bacpypes3's own decoding gives, with each PDU's own header."""

from __future__ import annotations

from bacpypes3.apdu import APCISequence, ReadPropertyMultipleRequest, WhoIsRequest
from bacpypes3.pdu import Address

import drivers.bacnet  # noqa: F401  (installs the memo)
from drivers.bacnet import decoding, services
from drivers.bacnet.profile import ObjectRef


def encoded_rpm(invoke_id: int, source: str) -> APCISequence:
    reads = [(services.object_id(ObjectRef(kind="lighting-output", instance=n)), "presentValue") for n in (1, 2, 3)]
    request = services.rpm_request(reads, Address("127.0.0.9:47808"))
    request.apduInvokeID = invoke_id
    request.pduSource = Address(source)
    return request


def test_repeated_bytes_decode_to_equal_independent_pdus() -> None:
    first = APCISequence.decode(encoded_rpm(3, "127.0.0.1:40001"))
    second = APCISequence.decode(encoded_rpm(4, "127.0.0.1:40002"))
    plain = decoding._decode(APCISequence, encoded_rpm(4, "127.0.0.1:40002"))  # bacpypes3's own
    assert isinstance(second, ReadPropertyMultipleRequest)
    assert second.apduInvokeID == 4 and str(second.pduSource) == "127.0.0.1:40002"
    assert first.apduInvokeID == 3 and str(first.pduSource) == "127.0.0.1:40001"
    assert second is not first
    assert second.encode().pduData == plain.encode().pduData
    assert second.apdu_contents() == plain.apdu_contents()
    # the copies' headers are their own: setting one leaves the other alone
    second.pduDestination = Address("127.0.0.5:47808")
    assert first.pduDestination != second.pduDestination


def test_other_pdus_are_not_memoised() -> None:
    before = decoding.memo_size()
    who_is = WhoIsRequest(destination=Address("127.255.255.255:47808")).encode()
    for _ in range(3):
        assert isinstance(APCISequence.decode(who_is), WhoIsRequest)
    assert decoding.memo_size() == before
