"""The shipped systemd unit: valid for systemd, hardened, and starting the real entry point."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "lightctl.service"


def test_the_unit_verifies_and_its_exposure_is_low(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) is needed: make test installs it"
    entry = Path(sys.executable).parent / "lightctl"
    assert entry.exists()
    unit = tmp_path / "lightctl.service"
    unit.write_text(UNIT.read_text().replace("/opt/lightctl/.venv/bin/lightctl", str(entry)))
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=20", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert security.returncode == 0, security.stdout[-2000:]
    assert "User=lightctl" in UNIT.read_text() and "ExecReload=/bin/kill -HUP $MAINPID" in UNIT.read_text()
