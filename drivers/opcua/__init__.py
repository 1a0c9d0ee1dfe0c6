"""OPC UA (asyncua) driver, simulator and profiles for the bridges' lighting PLCs."""

from drivers.opcua.plugin import OpcUaPlugin

PLUGIN = OpcUaPlugin()

__all__ = ["PLUGIN"]
