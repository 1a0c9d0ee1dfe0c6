"""Certificates for OPC UA security: generation (tests, demo, commissioning) and trust checks.

A PLC's certificate is trusted when the trust directory holds that very certificate (the usual
case: self-signed PLC certificates copied there on commissioning) or the CA certificate that
signed it. Keys are generated here and written with mode 0600; none is ever committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drivers.base import AccessDenied
from drivers.opcua.settings import OpcUaSettings

log = logging.getLogger(__name__)

CERT_SUFFIXES = (".der", ".pem", ".crt")


@dataclass(frozen=True, slots=True)
class CertificatePair:
    certificate: Path
    private_key: Path


def generate_certificate(
    directory: Path,
    name: str,
    *,
    application_uri: str,
    common_name: str | None = None,
    hostnames: tuple[str, ...] = ("localhost",),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    server: bool = False,
    days: int = 825,
    key_size: int = 2048,
) -> CertificatePair:
    """A self-signed application instance certificate (DER) and its key (PEM), as OPC UA Part 6
    wants them: the application URI in subjectAltName, key usages for signing and encryption."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name or name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lightctl"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    san += [x509.DNSName(h) for h in hostnames]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=True,
                data_encipherment=True, key_agreement=False, key_cert_sign=True, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.der"
    key_path = directory / f"{name}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return CertificatePair(cert_path, key_path)


def load_certificate(path: Path) -> x509.Certificate:
    """DER or PEM, whatever the suffix says (PEM is recognised by its armour)."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()  # the thumbprint OPC UA uses


def application_uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def trusted_certificates(directory: Path) -> list[x509.Certificate]:
    if not directory.is_dir():
        return []
    certs = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in CERT_SUFFIXES and path.is_file():
            certs.append(load_certificate(path))
    return certs


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    public_key = issuer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or cert.signature_hash_algorithm is None:
        return False
    try:
        public_key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
        )
    except InvalidSignature:
        return False
    return True


def untrusted_reason(cert: x509.Certificate, trusted: list[x509.Certificate]) -> str | None:
    """None when the certificate may be used, else why not, in words for an operator."""
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return f"certificate {fingerprint(cert)} is outside its validity ({cert.not_valid_after_utc:%Y-%m-%d})"
    der = cert.public_bytes(serialization.Encoding.DER)
    for anchor in trusted:
        if anchor.public_bytes(serialization.Encoding.DER) == der:
            return None
        if _signed_by(cert, anchor):
            return None
    subject = cert.subject.rfc4514_string()
    return f"certificate {subject} (thumbprint {fingerprint(cert)}) is not in the trust directory"


def store_trusted(directory: Path, cert: x509.Certificate) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{fingerprint(cert)}.der"
    path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return path


def client_certificate_hint(settings: OpcUaSettings) -> str:
    """What an operator checks when a PLC refuses the secure session (BadSecurityChecksFailed or
    BadCertificateUntrusted): above all, that the PLC trusts the daemon's client certificate."""
    certificate = settings.certificate
    try:
        thumbprint = fingerprint(load_certificate(certificate)) if certificate is not None else "none configured"
    except (OSError, ValueError) as exc:
        thumbprint = f"unreadable: {exc}"
    return (
        f"check that the PLC trusts the daemon's client certificate {certificate} (SHA-1 thumbprint {thumbprint}): "
        "import that .der file into the PLC's trusted client certificates (it is the file `lightctl opcua cert` "
        "wrote, with the thumbprint it printed); then that its application URI is the configured one and that "
        "the PLC's clock lies within the certificate's validity"
    )


def load_private_key_der(path: Path) -> bytes:
    """A private key file (PEM or DER, unencrypted) as PKCS#8 DER, which asyncua reads as is."""
    data = path.read_bytes()
    key = (
        serialization.load_pem_private_key(data, password=None)
        if data.lstrip().startswith(b"-----BEGIN")
        else serialization.load_der_private_key(data, password=None)
    )
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


async def configure_client_security(client: Client, settings: OpcUaSettings, controller_id: str) -> None:
    """Basic256Sha256 for ``client``: fetch the PLC's endpoints over an unsecured channel (the
    only thing OPC UA allows there), check its certificate against the trust directory before any
    credential is sent, then set the policy with our certificate and key."""
    assert settings.certificate is not None and settings.private_key is not None and settings.trust_dir is not None
    try:
        own_cert = load_certificate(settings.certificate).public_bytes(serialization.Encoding.DER)
        own_key = load_private_key_der(settings.private_key)
    except (OSError, ValueError) as exc:
        raise AccessDenied(controller_id, f"cannot load the client certificate or key: {exc}") from exc
    if settings.application_uri not in application_uris(x509.load_der_x509_certificate(own_cert)):
        raise AccessDenied(
            controller_id,
            f"client certificate {settings.certificate} does not carry application URI {settings.application_uri}",
        )
    mode = getattr(ua.MessageSecurityMode, settings.security_mode)
    endpoints = await client.connect_and_get_server_endpoints()
    try:
        endpoint = Client.find_endpoint(endpoints, mode, SecurityPolicyBasic256Sha256.URI)
    except ua.UaError as exc:
        raise AccessDenied(
            controller_id, f"the PLC offers no Basic256Sha256 {settings.security_mode} endpoint"
        ) from exc
    server_der = endpoint.ServerCertificate
    if not server_der:
        raise AccessDenied(controller_id, "the PLC's secure endpoint carries no certificate")
    server_cert = x509.load_der_x509_certificate(server_der)
    reason = untrusted_reason(server_cert, trusted_certificates(settings.trust_dir))
    if reason is not None:
        if not settings.trust_on_first_use:
            raise AccessDenied(
                controller_id,
                f"server certificate refused: {reason} {settings.trust_dir} "
                "(copy the PLC's certificate there, or set trust_on_first_use)",
            )
        stored = store_trusted(settings.trust_dir, server_cert)
        log.warning("%s: trusting the PLC's certificate on first use, stored as %s", controller_id, stored)
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        certificate=own_cert,
        private_key=own_key,
        server_certificate=server_cert.public_bytes(serialization.Encoding.DER),
        mode=mode,
    )
