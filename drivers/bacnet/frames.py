"""Just enough of the BACnet/IP frame layout to find the APDU in a datagram without decoding it:
for the benchmark's floor client (whose reply is it?) and the simulators (is this a write, and
when did it arrive?)."""

from __future__ import annotations

from bacpypes3.apdu import APDU, APCISequence, encode_max_apdu_length_accepted

BVLC_TYPE = 0x81
ORIGINAL_UNICAST = 0x0A
ORIGINAL_BROADCAST = 0x0B
FORWARDED_NPDU = 0x04
CONFIRMED_REQUEST = 0
WRITE_SERVICES = frozenset({15, 16})
"""WriteProperty and WritePropertyMultiple."""
SIMPLE_ACK = 2
BVLC_UNICAST = b"\x81\x0a"
BVLC_BROADCAST = b"\x81\x0b"
NPDU_EXPECTING_REPLY = b"\x01\x04"
NPDU_NO_REPLY = b"\x01\x00"


def apdu_offset(data: bytes) -> int | None:
    """Where the APDU starts in a BACnet/IP frame, or None (not BACnet/IP, or a network-layer
    message, which carries no APDU)."""
    if len(data) < 6 or data[0] != BVLC_TYPE:
        return None
    function = data[1]
    if function in (ORIGINAL_UNICAST, ORIGINAL_BROADCAST):
        offset = 4
    elif function == FORWARDED_NPDU:
        offset = 10  # the originating B/IP address (6 octets) comes first
    else:
        return None
    if len(data) < offset + 2:
        return None
    control = data[offset + 1]
    if control & 0x80:  # network layer message
        return None
    offset += 2
    if control & 0x20:  # destination specifier: DNET, DLEN, DADR (hop count after the source)
        offset += 3 + data[offset + 2]
    if control & 0x08:  # source specifier: SNET, SLEN, SADR
        offset += 3 + data[offset + 2]
    if control & 0x20:
        offset += 1
    return offset if offset < len(data) else None


def is_write_request(data: bytes) -> bool:
    """A confirmed WriteProperty or WritePropertyMultiple request."""
    offset = apdu_offset(data)
    if offset is None or data[offset] >> 4 != CONFIRMED_REQUEST:
        return False
    service = offset + (5 if data[offset] & 0x08 else 3)  # segmented requests carry two more octets
    return service < len(data) and data[service] in WRITE_SERVICES


def reply_invoke_id(data: bytes) -> int | None:
    """The invoke id of an ack, error, reject or abort."""
    reply = reply_of(data)
    return None if reply is None else reply[1]


def reply_of(data: bytes) -> tuple[int, int] | None:
    """(APDU type, invoke id) of an ack, error, reject or abort; None for anything else."""
    offset = apdu_offset(data)
    if offset is None or offset + 1 >= len(data) or (data[offset] >> 4) not in (2, 3, 5, 6, 7):
        return None
    return data[offset] >> 4, data[offset + 1]


def frame(apdu: APDU, invoke_id: int) -> bytes:
    """A BACnet/IP Original-Unicast-NPDU carrying the confirmed request ``apdu`` (typed, or
    already encoded), unsegmented, to a station on the local network."""
    request = apdu.encode() if isinstance(apdu, APCISequence) else apdu
    request.apduInvokeID = invoke_id
    request.apduSeg = False
    request.apduMor = False
    request.apduSA = False
    request.apduMaxSegs = 0
    request.apduMaxResp = encode_max_apdu_length_accepted(1476)
    body = NPDU_EXPECTING_REPLY + request.encode().pduData
    return bytes(BVLC_UNICAST + (4 + len(body)).to_bytes(2, "big") + body)


def broadcast_frame(apdu: APDU) -> bytes:
    """A BACnet/IP Original-Broadcast-NPDU carrying the unconfirmed request ``apdu`` (a Who-Is)
    to every station on the local network."""
    request = apdu.encode() if isinstance(apdu, APCISequence) else apdu
    body = NPDU_NO_REPLY + request.encode().pduData
    return bytes(BVLC_BROADCAST + (4 + len(body)).to_bytes(2, "big") + body)


def bvlc_function(data: bytes) -> int | None:
    """The BVLC function of a BACnet/IP frame (``ORIGINAL_UNICAST``, ``ORIGINAL_BROADCAST``, ...)."""
    return data[1] if len(data) >= 4 and data[0] == BVLC_TYPE else None


INVOKE_ID_AT = 8
"""Where ``frame`` puts the invoke id: after BVLC (4 octets), NPDU (2), the confirmed request's
type and its max segments/max response octet."""


def with_invoke_id(framed: bytes, invoke_id: int) -> bytes:
    """A frame made by ``frame``, carrying another invoke id (a show's cue is framed before
    the beat, and takes its invoke id at the beat)."""
    return b"".join((framed[:INVOKE_ID_AT], invoke_id.to_bytes(1, "big"), framed[INVOKE_ID_AT + 1 :]))
