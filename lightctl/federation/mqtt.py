"""The MQTT side shared by the district and the city: a client for the broker of the config
(aiomqtt, TLS, the daemon's own user), and the reconnection policy.

Sparkplug B asks for MQTT 3.1.1 or 5.0 with a clean session for edge nodes and host applications;
lightctl uses 3.1.1 (what every broker speaks). A daemon's client id is its node or host id, so a
second process with the same identity takes the session over and the first is told why.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import aiomqtt

from lightctl.federation.aiomqtt_internals import guard_write_registration
from lightctl.model.federation import BrokerSettings, FederationConfig
from lightctl.reconcile.reconnect import Backoff

log = logging.getLogger("lightctl.federation")

RECONNECT_FIRST_S = 0.25
ACK_TIMEOUT_S = 3.0
"""How long a subscription or a QoS 1 publish waits for the broker's acknowledgement: a broker
going down never sends it, and the session ends rather than wait (aiomqtt's default is the
connect timeout)."""


class FederationSetupError(RuntimeError):
    """The federation cannot start as configured (a password file missing or readable by others)."""


def read_password(settings: BrokerSettings) -> str | None:
    if settings.password_file is None:
        return None
    path = Path(settings.password_file)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise FederationSetupError(f"federation.broker.password_file {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise FederationSetupError(
            f"federation.broker.password_file {path} is readable by others (mode {mode & 0o777:o}): chmod 600 it"
        )
    return text


def tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    context = ssl.create_default_context(cafile=settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client(
    config: FederationConfig, identifier: str, will: aiomqtt.Will, password: str | None
) -> aiomqtt.Client:
    broker = config.broker
    made = aiomqtt.Client(
        broker.host,
        broker.port,
        username=config.username,
        password=password,
        identifier=identifier,
        will=will,
        clean_session=True,
        keepalive=broker.keepalive_s,
        timeout=broker.connect_timeout_s,
        tls_context=tls_context(broker),
        protocol=aiomqtt.ProtocolVersion.V311,
        logger=logging.getLogger("lightctl.federation.mqtt"),
    )
    guard_write_registration(made)  # no traceback in the log at every broker restart
    return made


def reconnect_policy(config: FederationConfig) -> Backoff:
    return Backoff(initial_s=RECONNECT_FIRST_S, maximum_s=config.broker.reconnect_max_s)
