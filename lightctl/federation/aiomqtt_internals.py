"""The aiomqtt internal the federation's MQTT client corrects, in one place: written for aiomqtt
2.5.1 on paho-mqtt 2.2.0 (:data:`WRITTEN_FOR`).

aiomqtt hands paho's socket to the event loop through paho's callbacks. When paho has data to
write it calls ``on_socket_register_write``, and aiomqtt's handler
(``Client._on_socket_register_write``) schedules ``loop.add_writer(fileno, ...)`` with
``call_soon_threadsafe`` (paho may call it from another thread). When the broker goes away between
that call and the scheduled one, paho has closed the socket by the time ``add_writer`` runs: uvloop
raises ``OSError: [Errno 9] Bad file descriptor`` in a loop callback, and the loop logs a traceback
that looks like a fault of the daemon, at every broker restart. Nothing is lost (the session has
ended; the client reconnects), but a traceback in the log at each broker restart is noise that
hides real ones. :func:`guard_write_registration` replaces that one handler on a client with the
same one that skips a socket closed meanwhile.

An aiomqtt not named in :data:`WRITTEN_FOR` is left as it is, with one log line.
tests/test_federation_aiomqtt_internals.py is the contract: it fails, never skips, when aiomqtt
moves it.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

import aiomqtt

log = logging.getLogger(__name__)

WRITTEN_FOR = ("2.5.1",)
"""aiomqtt versions whose socket callbacks this module was checked against (by the contract test)."""
INSTALLED = version("aiomqtt")
_reported = False


def guard_write_registration(client: aiomqtt.Client) -> bool:
    """Make ``client`` skip registering a writer for a socket that closed before the loop got to
    it; False (logged once) for an aiomqtt this was not written for."""
    global _reported
    if INSTALLED not in WRITTEN_FOR:
        if not _reported:
            _reported = True
            log.info("aiomqtt %s: its socket callbacks are left as they are (written for %s)", INSTALLED, ", ".join(WRITTEN_FOR))
        return False
    paho = client._client
    loop = client._loop

    def register_write(paho_client: Any, userdata: Any, sock: Any) -> None:
        fileno = sock.fileno()

        def writable() -> None:
            try:
                paho_client.loop_write()
            except Exception as exc:  # aiomqtt's own handling: a broken pipe ends the session
                disconnected = client._disconnected  # made anew at each connection
                if not disconnected.done():
                    disconnected.set_exception(exc)

        def add() -> None:
            if sock.fileno() != fileno:  # closed meanwhile: the session is over, nothing to write
                return
            try:
                loop.add_writer(fileno, writable)
            except (OSError, RuntimeError):  # uvloop: its poll handle for the fd closed with the socket
                return

        loop.call_soon_threadsafe(add)

    paho.on_socket_register_write = register_write
    return True
