"""asyncua's exceptions and OPC UA status codes -> the project's typed errors."""

from __future__ import annotations

import asyncio

from asyncua import ua
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from drivers.base import (
    AccessDenied,
    ControllerTimeout,
    ControllerUnreachable,
    DriverError,
    ProtocolFault,
    RequestRejected,
)

ACCESS_CODES = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadNotWritable,
        ua.StatusCodes.BadNotReadable,
        ua.StatusCodes.BadIdentityTokenRejected,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadCertificateUriInvalid,
        ua.StatusCodes.BadCertificateInvalid,
        ua.StatusCodes.BadCertificateTimeInvalid,
        ua.StatusCodes.BadCertificateRevoked,
        ua.StatusCodes.BadCertificateUseNotAllowed,
        ua.StatusCodes.BadSecurityChecksFailed,
        ua.StatusCodes.BadSecurityPolicyRejected,
        ua.StatusCodes.BadSecurityModeRejected,
    }
)
SESSION_CODES = frozenset(
    {
        ua.StatusCodes.BadSessionIdInvalid,
        ua.StatusCodes.BadSessionClosed,
        ua.StatusCodes.BadSessionNotActivated,
        ua.StatusCodes.BadSecureChannelIdInvalid,
        ua.StatusCodes.BadSecureChannelClosed,
        ua.StatusCodes.BadSecureChannelTokenUnknown,
        ua.StatusCodes.BadTcpSecureChannelUnknown,
        ua.StatusCodes.BadConnectionClosed,
        ua.StatusCodes.BadNotConnected,
        ua.StatusCodes.BadServerNotConnected,
        ua.StatusCodes.BadCommunicationError,
        ua.StatusCodes.BadShutdown,
        ua.StatusCodes.BadServerHalted,
    }
)
"""Service results that mean the session (or its secure channel) is gone while the TCP connection
may well stay up: PLCs end sessions on a session timeout or a runtime restart."""
CLIENT_TRUST_CODES = frozenset({ua.StatusCodes.BadSecurityChecksFailed, ua.StatusCodes.BadCertificateUntrusted})
"""What PLCs answer a client certificate they do not trust: open62541, Siemens and most others say
BadSecurityChecksFailed (they tell an attacker nothing more), asyncua BadCertificateUntrusted."""
EXPLAIN = {
    ua.StatusCodes.BadUserAccessDenied: "user name or password refused, or no right to this node",
    ua.StatusCodes.BadIdentityTokenRejected: "the PLC does not accept this kind of login",
    ua.StatusCodes.BadCertificateUntrusted: "the PLC does not trust our client certificate",
    ua.StatusCodes.BadCertificateUriInvalid: "our certificate's URI differs from our application URI",
    ua.StatusCodes.BadSecurityChecksFailed: "the PLC refused the secure session; most PLCs answer so when they do "
    "not trust the client certificate",
    ua.StatusCodes.BadWriteNotSupported: "the PLC refuses this kind of write",
}


class SessionLost(ControllerUnreachable):
    """The PLC ended the session or its secure channel (SESSION_CODES): reconnect at once."""


def status_name(code: int) -> str:
    name: str = ua.StatusCode(code).name
    return name


def status_error(controller_id: str, code: int, where: str) -> DriverError:
    """A Bad status for one node (``where`` names it) or one service."""
    name = status_name(code)
    detail = f"{where}: {name}" + (f" ({EXPLAIN[code]})" if code in EXPLAIN else "")
    if code in ACCESS_CODES:
        return AccessDenied(controller_id, detail)
    if code in SESSION_CODES:
        return SessionLost(controller_id, detail)
    if code in (ua.StatusCodes.BadTimeout, ua.StatusCodes.BadRequestTimeout):
        return ControllerTimeout(controller_id, detail)
    if code in (ua.StatusCodes.BadDecodingError, ua.StatusCodes.BadEncodingError):
        return ProtocolFault(controller_id, detail)
    return RequestRejected(controller_id, detail)


def cancelled_from_outside() -> bool:
    """True when the current task is being cancelled by someone else, not by a timeout of ours
    (``asyncio.timeout`` has uncancelled the task by the time its block is left)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def translate(controller_id: str, exc: BaseException, doing: str) -> DriverError:
    """Any exception out of asyncua or the socket, as one of ours. ``doing`` says what we were at."""
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | asyncio.CancelledError):
        # A CancelledError that reaches here is our own timeout firing while asyncua's wait_for
        # was completing (wait_for2 raises a CancelledError subclass asyncio.timeout does not convert).
        return ControllerTimeout(controller_id, f"{doing}: no answer in time")
    if isinstance(exc, UaStatusCodeError):
        return status_error(controller_id, exc.code, doing)
    if isinstance(exc, ConnectionError | OSError):
        return ControllerUnreachable(controller_id, f"{doing}: {exc.strerror or exc}" if isinstance(exc, OSError)
                                     else f"{doing}: {exc}")
    if isinstance(exc, UaError):
        return ProtocolFault(controller_id, f"{doing}: {exc}")
    return ProtocolFault(controller_id, f"{doing}: {type(exc).__name__}: {exc}")
