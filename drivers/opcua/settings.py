"""Controller keys of an OPC UA PLC in config.yaml, validated by pydantic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PORT = 4840
CLIENT_APPLICATION_URI = "urn:lightctl:opcua-client"


class OpcUaSettings(BaseModel):
    """Either ``endpoint: opc.tcp://host:port/path`` or ``host`` (+ ``port``, ``path``).

    Security ``None`` needs nothing else. ``Basic256Sha256`` needs a client certificate and key
    (PEM or DER files), a trust directory holding the PLC's certificate, and usually a user name
    with a password (``password_env`` names an environment variable, so config.yaml need not hold it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str | None = Field(default=None, pattern=r"^opc\.tcp://[^/\s:]+(:\d{1,5})?(/\S*)?$")
    host: str | None = None
    port: int | None = Field(default=None, ge=0, le=65535)
    path: str = ""

    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: Path | None = None
    private_key: Path | None = None
    application_uri: str = CLIENT_APPLICATION_URI
    trust_dir: Path | None = None
    trust_on_first_use: bool = False
    """Accept an unknown server certificate once and store it in ``trust_dir``. Off by default:
    an operator should put the PLC's certificate there on commissioning."""

    username: str | None = None
    password: str | None = None
    password_env: str | None = None

    subscribe: bool = True
    """Reported state from data-change notifications; False polls every ``poll_s``."""
    publishing_interval_ms: int = Field(default=500, ge=50, le=60_000)

    @model_validator(mode="after")
    def _check(self) -> OpcUaSettings:
        if self.endpoint is None and self.host is None:
            raise ValueError("give either endpoint (opc.tcp://host:port/path) or host")
        if self.endpoint is not None and (self.host is not None or self.port is not None):
            raise ValueError("give either endpoint or host/port, not both")
        if self.security_policy != "None":
            missing = [k for k in ("certificate", "private_key", "trust_dir") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"security_policy {self.security_policy} needs {', '.join(missing)}")
        if self.password is not None and self.password_env is not None:
            raise ValueError("give either password or password_env, not both")
        if (self.password is not None or self.password_env is not None) and self.username is None:
            raise ValueError("a password needs a username")
        return self

    @property
    def url(self) -> str:
        if self.endpoint is not None:
            return self.endpoint
        path = self.path if not self.path or self.path.startswith("/") else "/" + self.path
        return f"opc.tcp://{self.host}:{self.port if self.port is not None else DEFAULT_PORT}{path}"

    @property
    def host_port(self) -> tuple[str, int]:
        parsed = urlparse(self.url)
        return parsed.hostname or "", parsed.port or DEFAULT_PORT

    @property
    def secure(self) -> bool:
        return self.security_policy != "None"

    def resolved_password(self) -> str | None:
        if self.password_env is not None:
            return os.environ.get(self.password_env)
        return self.password
