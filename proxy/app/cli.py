"""The `seaway` command line: one subcommand module each, registered here."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Each module defines `register(subparsers)`, adding its subcommand(s) with
# `set_defaults(func=callable(args) -> int)`. Modules are imported lazily per name so
# `seaway echo` does not pay for the iptables code, and vice versa.
COMMAND_MODULES: dict[str, str] = {
    "run": "proxy.app.cmd_run",
    "check": "proxy.app.cmd_check",
    "apply": "proxy.app.cmd_kernel",
    "rules": "proxy.app.cmd_kernel",
    "trace": "proxy.app.cmd_kernel",
    "cleanup": "proxy.app.cmd_kernel",
    "echo": "proxy.app.cmd_echo",
    "demo": "proxy.app.cmd_demo",
    "proxy": "proxy.app.cmd_proxy",
}


_SERVING_COMMANDS = ("run", "proxy", "demo")


def _warn_if_stale() -> None:
    """An edited source next to an older compiled module: say which code really runs."""
    from proxy.app.native import native_status

    status = native_status()
    if status.stale:
        logging.getLogger(__name__).warning("%s", status.describe())


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from proxy.app.native import native_status

        try:
            number = version("seaway")
        except PackageNotFoundError:
            number = "(not installed)"
        print(f"seaway {number}\n{native_status().describe()}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seaway",
        description="seaway: a service proxy and load balancer. kube-proxy (iptables or "
        "userspace) and an Ingress controller in one daemon, fed by manifest "
        "files or the Kubernetes API.",
    )
    parser.add_argument(
        "-v",
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log verbosity (default info)",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the version and whether the hot path runs compiled, then exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    seen: set[str] = set()
    for name, module in COMMAND_MODULES.items():
        if only is not None and name != only:
            continue
        if module in seen:
            continue
        seen.add(module)
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Import only the module of the subcommand asked for (fast start, and a broken
    # optional module cannot break unrelated commands); --help alone lists them all.
    command = next((a for a in args_list if not a.startswith("-")), None)
    only = command if command in COMMAND_MODULES else None
    parser = build_parser(only)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # watchfiles reports every batch of file changes at INFO; we log what they mean.
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, logging.root.level))
    if command in _SERVING_COMMANDS:
        _warn_if_stale()
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
