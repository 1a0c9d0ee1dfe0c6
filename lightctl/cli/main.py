"""``lightctl``: the command line. Each group of commands registers itself from its own module;
a module imports what its commands need when they run (see lightctl.cli.common)."""

from __future__ import annotations

import argparse
import logging
import sys

from lightctl.cli import bacnet, benchmarks, dali, opcua, operate, reports, schedule, service
from lightctl.cli.common import (
    DEFAULT_CONFIG,
    EXIT_INCOMPLETE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    ApiError,
    UsageError,
)
from lightctl.config.problems import ConfigError

COMMAND_GROUPS = (service, operate, schedule, reports, benchmarks, opcua, dali, bacnet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightctl", description="Two Rivers Four Banks landscape lighting control")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    parser.add_argument("--api", help="daemon API base URL (default: from the config)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.status is None else EXIT_INCOMPLETE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
