"""HTTPS: the daemon serves it with the configured certificate, its session cookie is Secure,
the CLI on its machine checks it against that certificate and from elsewhere against --cacert;
without TLS the API stays on loopback unless the config says otherwise."""

from __future__ import annotations

import datetime
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lightctl.config.problems import ConfigError
from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from tests.conftest import build_config, free_port, installation_data, modbus_controller, with_endpoints
from tests.test_users_cli import lightctl
from tests.users_support import PASSWORD
from web.app import bound_port
from web.context import SESSION_COOKIE


def self_signed(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "api.pem", folder / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_plain_http_stays_on_loopback_unless_the_config_says_otherwise() -> None:
    data = installation_data([modbus_controller("m0", 0)], api_host="0.0.0.0")
    with pytest.raises(ConfigError, match=r"daemon\.api_host: api_host '0\.0\.0\.0' is not loopback and the API has no TLS"):
        build_config(data)
    build_config(installation_data([modbus_controller("m0", 0)], api_host="0.0.0.0", plain_http_beyond_loopback=True))
    build_config(installation_data([modbus_controller("m0", 0)], api_host="::1"))
    build_config(installation_data([modbus_controller("m0", 0)], api_host="0.0.0.0", tls_cert="a.pem", tls_key="a.key"))
    with pytest.raises(ConfigError, match=r"daemon\.tls_cert: tls_cert needs tls_key too"):
        build_config(installation_data([modbus_controller("m0", 0)], tls_cert="a.pem"))


async def test_the_api_over_https(make_farm: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lightctl")
    cert, key = self_signed(tmp_path)
    port = free_port()
    data = installation_data(
        [modbus_controller("m0", 0)], api_port=port, database=str(tmp_path / "tls.db"), tls_cert=str(cert), tls_key=str(key)
    )
    farm, _ = await make_farm(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints)), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(config_path))
    try:
        assert f"API over HTTPS on https://127.0.0.1:{bound_port(runner)}" in caplog.text
        trusted = ssl.create_default_context(cafile=str(cert))
        password = (tmp_path / "admin-password").read_text().strip()
        url = f"https://localhost:{port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.post(f"{url}/api/v1/session", json={"user": "admin", "password": password}, ssl=trusted) as response:
                assert response.status == 200
                cookie = response.cookies[SESSION_COOKIE]
            assert cookie["secure"] is True and cookie["httponly"] is True and cookie["samesite"] == "Strict"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):  # nobody's certificate authority
                await session.get(f"{url}/api/v1/status")
            with pytest.raises(aiohttp.ClientError):  # no plain HTTP on the port
                async with session.get(f"http://127.0.0.1:{port}/api/v1/status") as response:
                    await response.read()

        # the CLI on the daemon's machine: its own certificate is what it trusts, whatever name it bears
        base = ("--config", str(config_path))
        code, out, err = await lightctl(*base, "status", "--json")
        assert code == 0 and json.loads(out)["controllers_total"] == 1, err
        code, out, err = await lightctl(*base, "token", "create", "--user", "admin", "--label", "elsewhere", "--role", "viewer", "--json")
        token = json.loads(out)["token"]
        # from elsewhere: the system's authorities, or --cacert
        code, out, err = await lightctl(*base, "--url", url, "--token", token, "status")
        assert code == 3 and "certificate verify failed" in err
        code, out, err = await lightctl(*base, "--url", url, "--token", token, "--cacert", str(cert), "status", "--json")
        assert code == 0 and json.loads(out)["controllers_total"] == 1, err
    finally:
        await runner.cleanup()
        await daemon.stop()
    assert PASSWORD not in caplog.text


async def test_a_certificate_that_cannot_be_used_stops_the_start_plainly(tmp_path: Path) -> None:
    data = installation_data(
        [modbus_controller("m0", 0)], api_port=0, database=str(tmp_path / "x.db"),
        tls_cert=str(tmp_path / "missing.pem"), tls_key=str(tmp_path / "missing.key"),
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = await lightctl("--config", str(config_path), "run")
    assert code == 2 and "daemon.tls_cert" in err and "missing.pem" in err and "Traceback" not in err
