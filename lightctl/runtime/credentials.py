"""Files the daemon keeps beside its database, readable by its own OS user only (mode 0600):

* ``local-credential``: a random value, new at every start, which the CLI on the same machine
  presents (``Authorization: Bearer``) to act as the ``local`` caller (an admin) without a
  password, with the address the daemon listens on (``run --port`` may differ from the config).
  Being able to read it is the proof of being the daemon's user; a copy taken before a restart
  stops working at the restart. JSON: ``{"secret": ..., "url": ...}``.
* ``admin-password``: the first admin's random password, written (and printed) once at the first
  start, removed when that password is changed.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from lightctl.model.storage import files_dir

LOCAL_CREDENTIAL = "local-credential"
FIRST_PASSWORD = "admin-password"
REPLACED_TOKEN_FILE = "api-token"
"""The shared API token of lightctl before users and roles; removed at start (nothing accepts it)."""


class LocalCredentialError(RuntimeError):
    """The local credential cannot be used (missing, unreadable, or readable by others)."""


@dataclass(frozen=True, slots=True)
class LocalCredential:
    secret: str
    url: str | None
    """Where the daemon that wrote it listens (None until it does)."""


def local_credential_path(database: str | Path) -> Path:
    return files_dir(str(database)) / LOCAL_CREDENTIAL


def first_password_path(database: str | Path) -> Path:
    return files_dir(str(database)) / FIRST_PASSWORD


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, replacing it whole (never a moment when a
    half-written file, or one readable by others, is in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def new_local_credential() -> str:
    return "lcl_" + secrets.token_urlsafe(32)


def write_local_credential(database: str | Path, credential: LocalCredential) -> None:
    """Write the local credential beside the database (the one before stops working)."""
    write_private(local_credential_path(database), json.dumps({"secret": credential.secret, "url": credential.url}) + "\n")
    (files_dir(str(database)) / REPLACED_TOKEN_FILE).unlink(missing_ok=True)


def read_local_credential(database: str | Path) -> LocalCredential:
    """The local credential, for the CLI on the daemon's machine; refused when it is missing,
    unreadable (another OS user: use --token), or readable by anyone but its owner."""
    path = local_credential_path(database)
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read()
    except FileNotFoundError:
        raise LocalCredentialError(f"no local credential at {path}: the daemon has not started here") from None
    except OSError as exc:
        raise LocalCredentialError(
            f"cannot read the local credential {path} ({exc.strerror}): run this as the daemon's user, "
            "or give --token"
        ) from None
    if stat.S_IMODE(mode) & 0o077:
        raise LocalCredentialError(
            f"the local credential {path} is readable by others (mode {stat.S_IMODE(mode):o}): refused; "
            "the daemon writes a new one, mode 600, when it starts"
        )
    try:
        data = json.loads(text)
        credential = LocalCredential(str(data["secret"]), None if data.get("url") is None else str(data["url"]))
    except (ValueError, KeyError, TypeError):
        raise LocalCredentialError(f"the local credential {path} is damaged: the daemon writes a new one when it starts") from None
    if not credential.secret:
        raise LocalCredentialError(f"the local credential {path} is empty")
    return credential


def write_first_password(database: str | Path, password: str) -> Path:
    path = first_password_path(database)
    write_private(path, password + "\n")
    return path
