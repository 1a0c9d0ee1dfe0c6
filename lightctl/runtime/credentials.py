"""The API token the daemon keeps beside its database (mode 0600), which the local CLI reads (for a
PostgreSQL database, in the working directory: :func:`lightctl.model.storage.files_dir`)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from lightctl.model.storage import files_dir


def token_path(database: str) -> Path:
    return files_dir(database) / "api-token"


def load_or_create_token(database: str) -> str:
    path = token_path(database)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token
