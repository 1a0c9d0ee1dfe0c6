"""BACnet/IP (bacpypes3): the buildings of Jiangbeizui and Danzishi, run by their owners' BMS."""

from __future__ import annotations

from drivers.bacnet.plugin import PLUGIN

__all__ = ["PLUGIN"]
