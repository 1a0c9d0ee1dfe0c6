"""``lightctl discover bacnet [--range LOW-HIGH]``: Who-Is, and what answered, for commissioning."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from typing import Any


def _discover_parsers(subparsers: Any) -> Any:
    """The ``discover`` command's own sub-commands, shared with other protocols' plug-ins."""
    parser = subparsers.choices.get("discover")
    if parser is None:
        parser = subparsers.add_parser("discover", help="find field devices on the network (commissioning)")
        parser.add_subparsers(dest="discover_protocol", required=True)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("the discover command has no sub-commands")


def _instance_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        bounds = (int(low), int(high) if sep else int(low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH device instances, got {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1] <= 4_194_303:
        raise argparse.ArgumentTypeError(f"bad device instance range {text!r}")
    return bounds


def register(subparsers: Any) -> None:
    parser = _discover_parsers(subparsers).add_parser(
        "bacnet", help="send Who-Is and list the I-Am replies with device names and object lists"
    )
    parser.add_argument("--range", type=_instance_range, metavar="LOW-HIGH", help="device instances to ask for")
    parser.add_argument("--broadcast", default=None,
                        help="where to send Who-Is (default 127.255.255.255, the simulators; on a LAN e.g. 192.168.1.255)")
    parser.add_argument("--local", help="this machine's BACnet/IP address as a.b.c.d/prefix[:port]")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds to collect I-Am replies")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drivers.bacnet.discover import discover  # bacpypes3 only when the command runs
    from drivers.bacnet.settings import LOOPBACK_BROADCAST

    low, high = args.range if args.range else (None, None)
    broadcast = args.broadcast or LOOPBACK_BROADCAST
    devices = asyncio.run(
        discover(low=low, high=high, broadcast=broadcast, local_address=args.local, wait_s=args.wait)
    )
    if args.json:
        print(json.dumps([asdict(d) for d in devices], ensure_ascii=False))
        return 0
    if not devices:
        print("no BACnet device answered")
        return 1
    for device in devices:
        print(f"device {device.instance}  {device.address}  {device.name or '?'}  "
              f"(vendor {device.vendor_id}, max APDU {device.max_apdu})")
        if device.error:
            print(f"    {device.error}")
        for obj in device.objects:
            print(f"    {obj}")
    return 0
