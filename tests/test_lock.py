"""The environment the suite runs in is exactly requirements.lock, and the lock is what pyproject.toml asks for.

`make venv` installs the lock with `pip install --require-hashes`, then the project with `--no-deps`; CI does
that in a fresh clone, so these tests prove there that a fresh install has exactly the locked versions.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
PROJECT = canonicalize_name("lightctl")

# The lock is resolved for this interpreter and platform (make lock: --python-version 3.11
# --python-platform x86_64-manylinux_2_28), so pyproject.toml's markers are evaluated for it.
LOCK_TARGET = {
    "python_version": "3.11",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}

# Their private internals are used (drivers/*, web/, lightctl/federation/): exact pins, moved only on purpose.
INTERNALS_USED = ("pymodbus", "asyncua", "bacpypes3", "aiohttp", "aiomqtt")

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+) \\$")
HASH = re.compile(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$")


@dataclass(frozen=True)
class Locked:
    version: Version
    hashes: int


def read_lock(path: Path) -> dict[NormalizedName, Locked]:
    """Every line must be a comment, a `name==version \\` pin or one of its sha256 hashes: no option,
    index, link or path can hide in it."""
    locked: dict[NormalizedName, Locked] = {}
    current: NormalizedName | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if pin := PIN.match(line):
            current = canonicalize_name(pin["name"])
            assert current not in locked, f"{path.name}:{number}: {current} is pinned twice"
            locked[current] = Locked(Version(pin["version"]), 0)
        elif HASH.match(line) and current is not None:
            locked[current] = Locked(locked[current].version, locked[current].hashes + 1)
        else:
            raise AssertionError(f"{path.name}:{number}: neither a pin, a sha256 hash nor a comment: {line!r}")
    return locked


def installed() -> dict[NormalizedName, list[str]]:
    found: dict[NormalizedName, list[str]] = {}
    for dist in metadata.distributions():
        found.setdefault(canonicalize_name(dist.metadata["Name"]), []).append(dist.version)
    return found


def declared_requirements(pyproject: dict[str, Any]) -> list[Requirement]:
    """What make lock resolves: the runtime dependencies, the dev extra and the bootstrap group."""
    project = pyproject["project"]
    texts = [
        *project["dependencies"],
        *project["optional-dependencies"]["dev"],
        *pyproject["dependency-groups"]["bootstrap"],
    ]
    return [Requirement(text) for text in texts]


def test_the_lock_pins_every_distribution_with_hashes_and_names_no_index_or_path() -> None:
    text = LOCK.read_text(encoding="utf-8")
    locked = read_lock(LOCK)
    assert len(locked) > 50
    assert [name for name, entry in locked.items() if entry.hashes == 0] == []
    for leak in ("://", "file:", "/opt/", "/work/", "/tmp/", "--index-url", "--extra-index-url", "--find-links"):
        assert leak not in text, f"requirements.lock mentions {leak!r}: an index, a link or a local path"


def test_the_running_environment_is_exactly_the_lock() -> None:
    locked = read_lock(LOCK)
    found = installed()
    duplicated = {name: versions for name, versions in found.items() if len(versions) > 1 and name != PROJECT}
    assert duplicated == {}, f"installed more than once: {duplicated}"
    versions = {name: Version(versions[0]) for name, versions in found.items() if name != PROJECT}
    missing = sorted(set(locked) - set(versions))
    unlocked = sorted(f"{name}=={versions[name]}" for name in set(versions) - set(locked))
    wrong = sorted(
        f"{name}: locked {entry.version}, installed {versions[name]}"
        for name, entry in locked.items()
        if name in versions and versions[name] != entry.version
    )
    assert not (missing or unlocked or wrong), (
        f"locked but not installed: {missing}; installed but not locked: {unlocked}; other versions: {wrong}"
        " (make venv rebuilds .venv from requirements.lock)"
    )
    assert PROJECT in found


def test_the_lock_gives_what_pyproject_asks_for() -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    locked = read_lock(LOCK)
    target = {**default_environment(), **LOCK_TARGET}
    problems = []
    for requirement in declared_requirements(pyproject):
        if requirement.marker is not None and not requirement.marker.evaluate(target):
            continue
        entry = locked.get(canonicalize_name(requirement.name))
        if entry is None:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(entry.version, prereleases=True):
            problems.append(f"{requirement}: the lock has {entry.version}")
    assert problems == [], "pyproject.toml changed without make lock: " + "; ".join(problems)


def test_libraries_whose_internals_are_used_are_pinned_exactly() -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    by_name = {canonicalize_name(r.name): r for r in declared_requirements(pyproject)}
    for name in INTERNALS_USED:
        specifiers = list(by_name[canonicalize_name(name)].specifier)
        assert [s.operator for s in specifiers] == ["=="], f"{name} must be pinned with == in pyproject.toml"
