"""BACnet/IP (bacpypes3): the buildings of Jiangbeizui and Danzishi, run by their owners' BMS.

bacpypes3's fast paths (bacpypes3_internals.py) are installed by whatever starts bacpypes3: the
driver's shared client on first connect, the simulator host at start."""

from __future__ import annotations

from drivers.bacnet.plugin import PLUGIN

__all__ = ["PLUGIN"]
