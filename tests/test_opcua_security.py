"""Basic256Sha256 SignAndEncrypt with client certificate, user name and a trust directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from opcua_helpers import bridge_controller, with_endpoint

from drivers.base import AccessDenied
from drivers.opcua import PLUGIN
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.security import fingerprint, generate_certificate, load_certificate
from drivers.opcua.settings import CLIENT_APPLICATION_URI
from drivers.opcua.sim import OpcUaSimulator
from drivers.opcua.sim_plc import ASYNCUA_STACK, COMMON_STACK, PlcStack
from lightctl.model.values import ApplyResult, ChannelState


def _secure(tmp_path: Path, cert_name: str = "client", **extra: object):
    pair = generate_certificate(tmp_path / "own", cert_name, application_uri=CLIENT_APPLICATION_URI, key_size=2048)
    return bridge_controller(
        "plc-secure",
        security_policy="Basic256Sha256",
        security_mode="SignAndEncrypt",
        certificate=str(pair.certificate),
        private_key=str(pair.private_key),
        trust_dir=str(tmp_path / "trusted"),
        username="lighting",
        password="s3cret-night",
        **extra,
    )


async def _sim(tmp_path: Path, ctrl) -> OpcUaSimulator:
    sim = OpcUaSimulator([ctrl], any_port=True, pki_dir=tmp_path / "plc-pki")
    await sim.start()
    return sim


def _trust_plc(tmp_path: Path) -> None:
    (tmp_path / "trusted").mkdir(exist_ok=True)
    shutil.copy(tmp_path / "plc-pki" / "plc-secure-server.der", tmp_path / "trusted" / "plc.der")


async def test_secure_session_with_trusted_certificates_and_password(tmp_path: Path) -> None:
    ctrl = _secure(tmp_path)
    sim = await _sim(tmp_path, ctrl)
    _trust_plc(tmp_path)
    d = PLUGIN.create_driver(with_endpoint(ctrl, sim.endpoints()[ctrl.id]))
    try:
        await d.apply({"deck": ChannelState(True, 40.0)})
        assert (await d.read(["deck"])).channels["deck"].level == 40.0
        assert sim.service_count(ctrl.id, "Write") == 1
    finally:
        await d.close()
        await sim.stop()


async def test_prepared_sends_fire_signed_and_encrypted_also_across_a_token_renewal(tmp_path: Path) -> None:
    ctrl = _secure(tmp_path)
    sim = await _sim(tmp_path, ctrl)
    _trust_plc(tmp_path)
    d = PLUGIN.create_driver(with_endpoint(ctrl, sim.endpoints()[ctrl.id]))
    assert isinstance(d, OpcUaDriver)
    try:
        await d.connect()

        async def fire(level: float) -> ApplyResult:
            prepared = d.prepare({"deck": ChannelState(True, level)})
            assert prepared is not None
            future = prepared.fire()
            assert future is not None
            return await future

        assert await fire(30.0) == ApplyResult(operations=1)  # signed and encrypted at the fire
        assert (await d.read(["deck"])).channels["deck"].level == 30.0
        # asyncua renews the channel's token (at 75 % of its lifetime): the new token is taken
        # into use by the next request, the fired one, with the new keys
        assert d._client is not None
        await d._client.open_secure_channel(renew=True)
        assert await fire(45.0) == ApplyResult(operations=1)
        assert (await d.read(["deck"])).channels["deck"].level == 45.0
        assert await fire(50.0) == ApplyResult(operations=1)
        assert d.sessions == 1
        assert sim.service_count(ctrl.id, "Write") == 3
    finally:
        await d.close()
        await sim.stop()


async def test_untrusted_plc_certificate_is_refused_unless_trust_on_first_use(tmp_path: Path) -> None:
    ctrl = _secure(tmp_path)
    sim = await _sim(tmp_path, ctrl)
    d = PLUGIN.create_driver(with_endpoint(ctrl, sim.endpoints()[ctrl.id]))
    try:
        with pytest.raises(AccessDenied, match=r"server certificate refused: .* not in the trust directory"):
            await d.connect()
        assert sim.service_count(ctrl.id, "ActivateSession") == 0  # no password was sent
        tofu = PLUGIN.create_driver(with_endpoint(ctrl, {**sim.endpoints()[ctrl.id], "trust_on_first_use": True}))
        await tofu.connect()
        await tofu.close()
        assert len(list((tmp_path / "trusted").iterdir())) == 1
        await d.connect()  # now in the trust directory
    finally:
        await d.close()
        await sim.stop()


async def test_wrong_password_is_a_clear_access_denied(tmp_path: Path) -> None:
    ctrl = _secure(tmp_path)
    sim = await _sim(tmp_path, ctrl)
    _trust_plc(tmp_path)
    d = PLUGIN.create_driver(with_endpoint(ctrl, {**sim.endpoints()[ctrl.id], "password": "guess"}))
    try:
        with pytest.raises(AccessDenied, match=r"BadUserAccessDenied .*password"):
            await d.connect()
    finally:
        await d.close()
        await sim.stop()


@pytest.mark.parametrize("stack", [COMMON_STACK, ASYNCUA_STACK], ids=["common", "asyncua"])
async def test_an_untrusted_client_certificate_says_to_check_that_the_plc_trusts_ours(
    tmp_path: Path, stack: PlcStack
) -> None:
    """PLC stacks answer a client certificate they do not trust with BadSecurityChecksFailed (asyncua
    with BadCertificateUntrusted): the operator must read which certificate the PLC must trust."""
    ctrl = _secure(tmp_path)
    sim = OpcUaSimulator([ctrl], any_port=True, pki_dir=tmp_path / "plc-pki", stack=stack)
    await sim.start()
    _trust_plc(tmp_path)
    other = generate_certificate(tmp_path / "other", "replaced", application_uri=CLIENT_APPLICATION_URI)
    d = PLUGIN.create_driver(
        with_endpoint(
            ctrl, {**sim.endpoints()[ctrl.id], "certificate": other.certificate, "private_key": other.private_key}
        )
    )
    try:
        with pytest.raises(AccessDenied) as refused:
            await d.connect()
    finally:
        await d.close()
        await sim.stop()
    message = str(refused.value)
    assert ("BadSecurityChecksFailed" if stack is COMMON_STACK else "BadCertificateUntrusted") in message
    assert "check that the PLC trusts the daemon's client certificate" in message
    assert str(other.certificate) in message and fingerprint(load_certificate(other.certificate)) in message
    assert "lightctl opcua cert" in message


def test_secure_settings_need_certificate_key_and_trust_dir() -> None:
    with pytest.raises(ValueError, match="needs certificate, private_key, trust_dir"):
        PLUGIN.settings_model.model_validate({"host": "10.0.0.5", "security_policy": "Basic256Sha256"})
    ok = PLUGIN.settings_model.model_validate({"endpoint": "opc.tcp://10.0.0.5:4840/plc"})
    assert ok.url == "opc.tcp://10.0.0.5:4840/plc"
    assert PLUGIN.settings_model.model_validate({"host": "10.0.0.5"}).url == "opc.tcp://10.0.0.5:4840"


async def test_secure_plc_refuses_an_unsecured_session(tmp_path: Path) -> None:
    ctrl = _secure(tmp_path)
    sim = await _sim(tmp_path, ctrl)
    plain = {**sim.endpoints()[ctrl.id], "security_policy": "None"}
    d = PLUGIN.create_driver(with_endpoint(ctrl, plain))
    try:
        with pytest.raises(AccessDenied, match="BadSecurityPolicyRejected"):
            await d.connect()
        assert sim.service_count(ctrl.id, "CreateSession") == 1  # asked, and refused
        assert sim.service_count(ctrl.id, "Read") == 0
    finally:
        await d.close()
        await sim.stop()
