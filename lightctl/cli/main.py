"""``lightctl``: the command line. Each group of commands registers itself from its own module;
a module imports what its commands need when they run (see lightctl.cli.common)."""

from __future__ import annotations

import argparse
import logging
import sys

from lightctl.cli import bacnet, benchmarks, dali, faults, opcua, operate, records, schedule, service, users
from lightctl.cli.common import (
    DEFAULT_CONFIG,
    EXIT_INCOMPLETE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    TOKEN_VARIABLE,
    AccessRefused,
    ApiError,
    UsageError,
    local_caller,
)
from lightctl.cli.rules import COMMANDS, Acts, leaf_commands
from lightctl.config.problems import ConfigError

COMMAND_GROUPS = (service, operate, schedule, records, faults, benchmarks, opcua, dali, bacnet, users)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightctl", description="Two Rivers Four Banks landscape lighting control")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    parser.add_argument(
        "--url", "--api", dest="url",
        help="another daemon's API, e.g. https://district-2.example:8650 (default: the one the config names; "
             "--api is the old name)",
    )
    parser.add_argument(
        "--token",
        help=f"API token to act with (or the {TOKEN_VARIABLE} environment variable, which stays out of the process list); "
             "without one, the local credential of the daemon the config names",
    )
    parser.add_argument("--cacert", help="CA certificate(s) (PEM) to check an HTTPS --url with")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    for words, leaf in leaf_commands(parser):
        leaf.set_defaults(command_words=words)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    rule = COMMANDS.get(args.command_words)
    if rule is None:
        print(f"lightctl: '{args.command_words}' has no access rule (lightctl/cli/rules.py): refused", file=sys.stderr)
        return EXIT_USAGE
    try:
        if rule.acts is Acts.RECORDS and args.url is None and rule.permission is not None:
            args.caller = local_caller(args, rule.permission)
        code: int = args.func(args)
    except AccessRefused as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
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
