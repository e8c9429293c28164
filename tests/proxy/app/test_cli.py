"""The `seaway` command line as a user meets it."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from proxy.app.cli import COMMAND_MODULES, build_parser


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_is_registered() -> None:
    assert set(subparsers()) == set(COMMAND_MODULES)


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_every_flag_has_help(name: str) -> None:
    sub = subparsers()[name]
    assert sub.description, f"seaway {name} has no description"
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and len(action.help) > 10, (
            f"seaway {name} {'/'.join(action.option_strings) or action.dest} has no help"
        )


def test_run_without_a_source_says_what_to_give() -> None:
    env = {"PATH": "/usr/bin:/bin"}  # no KUBERNETES_SERVICE_HOST
    proc = subprocess.run([sys.executable, "-m", "proxy.app.cli", "run"], capture_output=True,
                          text=True, env=env, timeout=30)
    assert proc.returncode == 2
    assert "-c PATH" in proc.stderr and "--kubeconfig" in proc.stderr


def test_run_with_missing_config_file() -> None:
    proc = subprocess.run([sys.executable, "-m", "proxy.app.cli", "run", "-c", "/nonexistent.yaml"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "/nonexistent.yaml: no such file" in proc.stderr


def test_bad_duration_is_a_clear_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "proxy.app.cli", "run", "-c", "x",
                           "--min-sync-period", "soon"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "invalid duration 'soon'" in proc.stderr


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("1s", 1.0), ("2m", 120.0), ("1.5", 1.5), ("0", 0.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    from proxy.app.options import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), (":8080", ("0.0.0.0", 8080)),
     ("[::1]:443", ("::1", 443))],
)
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    from proxy.app.options import host_port

    assert host_port(text) == expected


@pytest.mark.parametrize("text", ["nohost", "1.2.3.4:99999", "1.2.3.4:http"])
def test_host_port_rejects(text: str) -> None:
    from proxy.app.options import host_port

    with pytest.raises(argparse.ArgumentTypeError, match="expected HOST:PORT"):
        host_port(text)


def test_run_with_broken_kubeconfig_is_one_line_and_exit_1(tmp_path: object) -> None:
    from pathlib import Path

    from tests.support import free_port

    kc = Path(str(tmp_path)) / "kubeconfig"
    kc.write_text("garbage: [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.app.cli", "run", "--kubeconfig", str(kc),
         "--healthz-bind-address", f"127.0.0.1:{free_port()}",
         "--metrics-bind-address", f"127.0.0.1:{free_port()}",
         "--http-bind-address", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert f"seaway run: {kc}: cannot load kubeconfig" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_upstream_pipelining_flag_reaches_the_l7_settings() -> None:
    from ingress.dataplane import IngressDataplane
    from proxy.app.options import options_from_args

    args = build_parser().parse_args(["run", "-c", "x", "--upstream-pipelining", "8"])
    dp = IngressDataplane(options_from_args(args).ingress_config())
    assert dp.settings.upstream_pipelining == 8
    default = build_parser().parse_args(["run", "-c", "x"])
    default_dp = IngressDataplane(options_from_args(default).ingress_config())
    assert default_dp.settings.upstream_pipelining == 1


@pytest.mark.parametrize("value", ["0", "65", "two", "-1"])
def test_upstream_pipelining_rejects(value: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "proxy.app.cli", "run", "-c", "x",
                           f"--upstream-pipelining={value}"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert f"invalid --upstream-pipelining '{value}'" in proc.stderr


def test_limit_flags_reach_the_l4_and_l7_configs() -> None:
    import resource

    from ingress.dataplane import IngressDataplane
    from proxy.app.limits import auto_max_connections
    from proxy.app.options import options_from_args

    args = build_parser().parse_args(
        ["run", "-c", "x", "--max-connections", "500", "--max-endpoint-connections", "8",
         "--max-endpoint-pending", "4"])
    options = options_from_args(args)
    settings = IngressDataplane(options.ingress_config()).settings
    assert (settings.max_connections, settings.max_endpoint_requests,
            settings.max_endpoint_connecting) == (500, 8, 4)
    l4 = options.userspace_config()
    assert l4.max_connections == 500
    assert (l4.endpoint_limits.max_active, l4.endpoint_limits.max_connecting) == (8, 4)

    default = options_from_args(build_parser().parse_args(["run", "-c", "x"]))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert default.userspace_config().max_connections == auto_max_connections(nofile)
    assert default.userspace_config().endpoint_limits.max_active == 1024
    assert auto_max_connections(1024) == 462
    unlimited = build_parser().parse_args(["run", "-c", "x", "--max-connections", "0"])
    assert options_from_args(unlimited).ingress_config().max_connections == 0


@pytest.mark.parametrize(("flag", "value"), [("--max-connections", "lots"),
                                             ("--max-connections", "-1"),
                                             ("--max-endpoint-connections", "auto")])
def test_limit_flags_reject(flag: str, value: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "proxy.app.cli", "run", "-c", "x",
                           f"{flag}={value}"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert f"'{value}'" in proc.stderr and "whole number" in proc.stderr
def test_node_watch_only_without_node_zone() -> None:
    """The kube source watches this node's Node for its zone unless --node-zone says it,
    and for its addresses while the Ingress status shows them."""
    from discovery.topology import NodeTopology
    from proxy.app.options import Options

    assert Options(hostname="node-a").kube_source_config().node_name == "node-a"
    zoned = Options(hostname="node-a", node_zone="z1")
    assert zoned.kube_source_config().node_name == "node-a"  # the status needs its address
    for other in ({"publish_status_address": ("10.0.0.1",)},
                  {"publish_service": ("ns", "lb")}, {"update_status": False}):
        options = Options(hostname="node-a", node_zone="z1", **other)  # type: ignore[arg-type]
        assert options.kube_source_config().node_name == ""
    assert Options(hostname="node-a", node_zone="z1").node_topology() == NodeTopology(
        "node-a", "z1"
    )
