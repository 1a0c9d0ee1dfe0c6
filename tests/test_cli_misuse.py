"""CLI misuse: a clear message and a non-zero exit code, a daemon that is down included (issue 18)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from conftest import free_port

from lightctl.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own refusals
            code = int(exc.code or 0)
    text = err.getvalue() + out.getvalue()
    assert "Traceback" not in text
    return code, text


DOWN = ("--config", str(ROOT / "config.yaml"), "--api", "http://127.0.0.1:{port}")

API_COMMANDS = [
    ("status",), ("scene", "apply", "all-on"), ("handback", "site:jiangbeizui"), ("override", "list"),
    ("override", "clear", "3"), ("show", "start", "confluence-classic"), ("show", "stop"), ("show", "status"),
    ("curtail", "apply", "--target", "*", "--off"), ("curtail", "list"), ("curtail", "restore"), ("config", "reload"),
]


@pytest.mark.parametrize("command", API_COMMANDS, ids=[" ".join(c) for c in API_COMMANDS])
def test_a_daemon_that_is_down_is_said_so_with_exit_code_3(command: tuple[str, ...]) -> None:
    port = free_port()
    code, text = run(*(a.format(port=port) for a in DOWN), *command)
    assert code == 3 and f"cannot reach the daemon at http://127.0.0.1:{port}" in text, text


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("no-such-command",), "invalid choice"),
        (("scene", "apply"), "the following arguments are required: name"),
        (("curtail", "apply", "--target", "*"), "one of the arguments --off --level is required"),
        (("run", "--port", "http"), "bad port 'http'"),
        (("schedule", "preview", "--days", "0"), "--days must be 1 to"),
        (("schedule", "preview", "--from", "yesterday"), "bad date 'yesterday'"),
        (("scene", "show", "nigth-normal"), "did you mean"),
        (("scene", "explain", "all-on", "--target", "site:atlantis"), "unknown site 'atlantis'"),
        (("show", "start"), "the following arguments are required: name"),
    ],
)
def test_misuse_is_refused_with_a_clear_message(argv: tuple[str, ...], said: str) -> None:
    code, text = run("--config", str(ROOT / "config.yaml"), *argv)
    assert code == 2, text
    assert said in text, text


def test_every_command_prints_its_help() -> None:
    """`lightctl <any command> --help` prints, never a traceback: argparse formats help strings with %,
    so a bare percent sign in one (such as "a 30% offline flood") broke `lightctl bench --help`."""
    import argparse

    from lightctl.cli.main import build_parser

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        assert parser.format_help(), path
        found = [path]
        for action in parser._actions:  # argparse offers no public list of subparsers
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found += walk(child, f"{path} {name}")
        return found

    commands = walk(build_parser(), "lightctl")
    assert "lightctl bench faults" in commands and len(commands) > 30
