"""BACnet errors, rejects and aborts as the project's typed errors, naming device, object and
property (bacpypes3 raises all three as ``ErrorRejectAbortNack``, a BaseException)."""

from __future__ import annotations

from bacpypes3.apdu import AbortPDU, ErrorPDU, ErrorRejectAbortNack, RejectPDU

from drivers.base import AccessDenied, DriverError, ProtocolFault, RequestRejected

DENIED_CODES = frozenset({"write-access-denied", "read-access-denied", "password-failure", "access-denied"})
OVERSIZE_ABORTS = frozenset({"segmentation-not-supported", "buffer-overflow", "apdu-too-long"})
UNSUPPORTED_CODES = frozenset(
    {"service-request-denied", "optional-functionality-not-supported", "cov-subscription-failed"}
)


def _name(value: object) -> str:
    text = str(value)
    return "".join("-" + c.lower() if c.isupper() else c for c in text)


def error_code(exc: ErrorRejectAbortNack) -> str:
    """The standard's name of the code, hyphenated: ``value-out-of-range``."""
    if isinstance(exc, ErrorPDU):
        code = getattr(exc, "errorCode", None)
        if code is None:  # WritePropertyMultipleError and friends carry an ErrorType
            code = exc.errorType.errorCode
        return _name(code)
    if isinstance(exc, RejectPDU | AbortPDU):
        return _name(exc.apduAbortRejectReason)
    return "unknown"


def is_oversize(exc: ErrorRejectAbortNack) -> bool:
    return isinstance(exc, AbortPDU | RejectPDU) and error_code(exc) in OVERSIZE_ABORTS


def is_unsupported(exc: ErrorRejectAbortNack) -> bool:
    code = error_code(exc)
    return (isinstance(exc, RejectPDU) and code == "unrecognized-service") or code in UNSUPPORTED_CODES


def translate(controller_id: str, device: str, what: str, exc: ErrorRejectAbortNack) -> DriverError:
    """``what`` names the object and property, e.g. ``lighting-output,1 present-value``."""
    code = error_code(exc)
    if isinstance(exc, ErrorPDU):
        klass = getattr(exc, "errorClass", None)
        if klass is None:
            klass = exc.errorType.errorClass
        detail = f"{device} {what}: refused, {_name(klass)}: {code}"
        if code in DENIED_CODES:
            return AccessDenied(controller_id, detail)
        return RequestRejected(controller_id, detail)
    if isinstance(exc, RejectPDU):
        return RequestRejected(controller_id, f"{device} {what}: rejected, {code}")
    if isinstance(exc, AbortPDU):
        return RequestRejected(controller_id, f"{device} {what}: aborted, {code}")
    return ProtocolFault(controller_id, f"{device} {what}: {exc!r}")
