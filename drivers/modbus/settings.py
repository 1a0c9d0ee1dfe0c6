"""The Modbus TCP keys of a controller in config.yaml (``host``, ``port``, ``unit``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModbusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=1, le=247, description="Modbus unit (device) id")
