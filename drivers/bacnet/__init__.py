"""BACnet/IP (bacpypes3): the buildings of Jiangbeizui and Danzishi, run by their owners' BMS."""

from __future__ import annotations

from drivers.bacnet import decoding, lookups

lookups.install()
decoding.install()

from drivers.bacnet.plugin import PLUGIN  # noqa: E402

__all__ = ["PLUGIN"]
