"""``lightctl opcua``: commissioning helpers for the bridges' PLCs.

* ``cert``: make the daemon's client certificate and key (the ``.der`` goes to each PLC's
  trusted list; ``certificate:``/``private_key:`` in config.yaml point at the files).
* ``check ID``: connect to one configured PLC exactly as the daemon does, resolve its profile's
  browse paths and read everything once: the quickest proof that profile and PLC agree.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    opcua = sub.add_parser("opcua", help="OPC UA PLC commissioning").add_subparsers(dest="opcua_command", required=True)
    p = opcua.add_parser("cert", help="create the client certificate (DER) and key (PEM)")
    p.add_argument("--out", type=Path, default=Path("var/pki"), help="directory (default: %(default)s)")
    p.add_argument("--name", default="lightctl-client")
    p.add_argument("--uri", default=None, help="application URI (default: the daemon's, urn:lightctl:client)")
    p.add_argument("--host", action="append", default=None, help="DNS name in the certificate (repeatable)")
    p.add_argument("--days", type=int, default=825)
    p.set_defaults(func=cmd_cert)
    p = opcua.add_parser("check", help="connect to a configured PLC, resolve its profile, read once")
    p.add_argument("controller")
    p.set_defaults(func=cmd_check)


def cmd_cert(args: argparse.Namespace) -> int:
    from drivers.opcua.security import fingerprint, generate_certificate, load_certificate
    from drivers.opcua.settings import CLIENT_APPLICATION_URI

    pair = generate_certificate(
        args.out, args.name, application_uri=args.uri or CLIENT_APPLICATION_URI, hostnames=tuple(args.host or ("localhost",)), days=args.days
    )
    print(f"certificate: {pair.certificate}\nprivate key: {pair.private_key} (mode 0600)")
    print(f"thumbprint:  {fingerprint(load_certificate(pair.certificate))}")
    print("Put the certificate in each PLC's trusted list; put each PLC's certificate in the trust_dir.")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from drivers.base import DriverError
    from drivers.opcua.driver import OpcUaDriver
    from lightctl.resolve.loading import load_config

    config = load_config(args.config)
    found = [c for c in config.controllers() if c.id == args.controller]
    if not found or found[0].protocol != "opcua":
        print(f"no OPC UA controller {args.controller!r} in {args.config}")
        return 2
    driver = OpcUaDriver(found[0])

    async def run() -> int:
        try:
            await driver.connect()
            assert driver.resolved is not None
            for channel, nodes in driver.resolved.zones.items():
                for key, ref in nodes.items():
                    print(f"{channel:20} {key:8} {ref.node.to_string():24} {ref.path}")
            for name, ref in driver.resolved.plc.items():
                print(f"{'(PLC)':20} {name:8} {ref.node.to_string():24} {ref.path}")
            reading = await driver.read(None)
            for channel, r in reading.channels.items():
                print(f"{channel:20} on={r.on} level={r.level} power={r.power_w} W faults={sorted(r.faults)}")
            print(f"PLC power {reading.power_w} W, energy {reading.energy_kwh} kWh, faults {sorted(reading.faults)}")
            return 0
        except DriverError as exc:
            print(f"{exc.kind}: {exc}")
            return 1
        finally:
            await driver.close()

    return asyncio.run(run())
