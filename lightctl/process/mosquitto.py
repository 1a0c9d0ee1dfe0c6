"""A Mosquitto broker for the federation (``lightctl demo --federated``, the federation benchmark,
the tests): its config, a user per district and one for the city (hashed by
``mosquitto_passwd``), the ACL that lets a district publish only its own topics, and TLS with a
CA of its own, all in a temporary directory, on a free loopback port. Never the machine's own
service. ``deploy/mosquitto/`` holds the same config for a real broker (:func:`render_acl`
writes its ACL).

Debian's package ``mosquitto`` (2.0): ``/usr/sbin/mosquitto`` and ``mosquitto_passwd``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lightctl.model.federation import BrokerSettings

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class BrokerUnavailable(RuntimeError):
    """Mosquitto is not installed, or did not start."""


def render_acl(group: str, city: str, districts: Iterable[str]) -> str:
    """The broker's ACL for a Sparkplug group: the city (primary host ``city``) reads all and
    commands every node; a district, whose user name is its node id, publishes its own node's
    and devices' messages only and reads only its own commands and the city's STATE."""
    readers = "".join(f"\nuser {d}\ntopic read spBv1.0/STATE/{city}\n" for d in districts)
    return f"""# lightctl federation ACL for Sparkplug B group '{group}' (written by lightctl.process.mosquitto.render_acl).
# Mosquitto checks every publish and subscribe against it: a district cannot speak for another.

# The city, the primary host application: everything of its group, and its own STATE.
user {city}
topic readwrite spBv1.0/{group}/#
topic readwrite spBv1.0/STATE/{city}

# Every district (user name = its Sparkplug edge node id = its district id): its own topics only.
pattern write spBv1.0/{group}/NBIRTH/%u
pattern write spBv1.0/{group}/NDEATH/%u
pattern write spBv1.0/{group}/NDATA/%u
pattern write spBv1.0/{group}/DBIRTH/%u/+
pattern write spBv1.0/{group}/DDATA/%u/+
pattern write spBv1.0/{group}/DDEATH/%u/+
pattern read spBv1.0/{group}/NCMD/%u
pattern read spBv1.0/{group}/DCMD/%u/+

# ... and each district reads the city's STATE (it publishes nothing until the city is online).{readers}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_certificates(directory: Path, hosts: Iterable[str] = ("127.0.0.1", "localhost")) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signs for ``hosts``: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lightctl federation CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lightctl broker")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


class Mosquitto:
    """``start()``, ``settings(user)`` for a daemon's config, ``restart()``, ``stop()``."""

    def __init__(self, *, group: str, city: str, districts: Iterable[str], tls: bool = True, extra_users: Iterable[str] = ()) -> None:
        self.group = group
        self.city = city
        self.districts = list(districts)
        self.tls = tls
        self.passwords = {user: secrets.token_urlsafe(16) for user in (city, *self.districts, *extra_users)}
        self.port = 0
        self.dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    @property
    def ca_file(self) -> Path | None:
        return self.dir / "ca.pem" if self.dir is not None and self.tls else None

    def password_file(self, user: str) -> Path:
        assert self.dir is not None
        return self.dir / f"{user}.password"

    def settings(self, user: str) -> BrokerSettings:
        """Where and as whom a daemon connects (the password in a 0600 file)."""
        return BrokerSettings(
            host="127.0.0.1", port=self.port, tls=self.tls, ca_file=str(self.ca_file) if self.ca_file else None,
            username=user, password_file=str(self.password_file(user)), keepalive_s=5, reconnect_max_s=2.0,
        )

    def start(self) -> None:
        if not Path(self._binary).exists() or shutil.which("mosquitto_passwd") is None:
            raise BrokerUnavailable("Mosquitto is not installed (Debian: apt-get install mosquitto; `make test` does it)")
        self.dir = Path(tempfile.mkdtemp(prefix="lightctl-mqtt-"))
        self.port = free_port()
        lines = []
        for user, password in self.passwords.items():
            path = self.password_file(user)
            path.write_text(password + "\n", encoding="utf-8")
            path.chmod(0o600)
            lines.append(f"{user}:{password}")
        passwords = self.dir / "passwords"
        passwords.write_text("\n".join(lines) + "\n", encoding="utf-8")
        passwords.chmod(0o600)
        subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True, capture_output=True, timeout=30)
        (self.dir / "acl").write_text(render_acl(self.group, self.city, self.districts), encoding="utf-8")
        listener = [f"listener {self.port} 127.0.0.1"]
        if self.tls:
            ca, cert, key = write_certificates(self.dir)
            listener += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2"]
        config = [
            *(["user root"] if os.geteuid() == 0 else []),  # (root would drop to 'mosquitto', who cannot read these files)
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {passwords}",
            f"acl_file {self.dir / 'acl'}",
            "persistence false",
            "max_queued_messages 100000",
            f"log_dest file {self.dir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            *listener,
        ]
        (self.dir / "mosquitto.conf").write_text("\n".join(config) + "\n", encoding="utf-8")
        try:
            self._launch()
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        assert self.dir is not None
        log = self.dir / "mosquitto.log"
        seen = log.stat().st_size if log.exists() else 0
        self._process = subprocess.Popen(
            [self._binary, "-c", str(self.dir / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:  # it says "... running" once it listens
            if self._process.poll() is not None:
                raise BrokerUnavailable(f"mosquitto exited ({self._process.returncode}): {self.log_tail()}")
            if log.exists() and b" running" in log.read_bytes()[seen:]:
                return
            time.sleep(0.02)
        self._halt(signal.SIGKILL)
        raise BrokerUnavailable(f"mosquitto did not start in {START_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        log = self.dir / "mosquitto.log" if self.dir else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""

    def kill(self) -> None:
        """Stop the broker the hard way (a crash: no goodbye to its clients)."""
        self._halt(signal.SIGKILL)

    def _halt(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, *, crash: bool = False, down_s: float = 0.0) -> None:
        """Stop (SIGTERM, or SIGKILL with ``crash``), stay down ``down_s``, start again on the same
        port with the same users: every client's session is gone (no persistence)."""
        self._halt(signal.SIGKILL if crash else signal.SIGTERM)
        if down_s:
            time.sleep(down_s)
        self._launch()

    def stop(self) -> None:
        self._halt(signal.SIGTERM)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
