"""Shared benchmark helpers: free ports, peer processes (nginx, haproxy), wrk runs.

Every process started through a `Processes` group is stopped when the group exits, also
on Ctrl-C or an exception. Temporary configs live in one temp directory per group.

    with Processes() as procs:
        port = free_port()
        nginx_backend(procs, port)
        res = run_wrk(f"http://127.0.0.1:{port}/", connections=64, threads=2, duration=5)
        print(res.rps, res.p50_ms, res.p99_ms)
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

HOST = "127.0.0.1"


def free_port(host: str = HOST, kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free right now on `host` (bind to 0 and release)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(
    host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until a TCP port accepts connections; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        sys.exit(
            f"missing programs: {', '.join(missing)} (apt-get install nginx-light haproxy wrk)"
        )


class Processes:
    """A group of child processes and a temp dir, all cleaned up on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmpdir = tempfile.mkdtemp(prefix="seaway-bench-")

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def path(self, name: str) -> str:
        return os.path.join(self.tmpdir, name)

    def write(self, name: str, text: str) -> str:
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, log: str | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(self.path(log), "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        if log and not isinstance(out, int):
            out.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)
        shutil.rmtree(self.tmpdir, ignore_errors=True)


# ---------------------------------------------------------------- peers


def start_nginx(
    procs: Processes,
    name: str,
    port: int,
    server: str,
    http: str = "",
    workers: int = 1,
    host: str = HOST,
    connections: int = 4096,
    listen: str = "",
) -> subprocess.Popen[bytes]:
    """nginx in the foreground in its own directory under the bench's temp dir: one
    `server` listening on host:port with the given body, keep-alive forever, no access log.
    `http` adds directives at http level (an upstream block, say). `connections`:
    worker_connections (client and upstream connections count). `listen`: more
    parameters of the listen directive (" ssl")."""
    require("nginx")
    d = procs.path(f"{name}-{port}")
    os.makedirs(d, exist_ok=True)
    conf = f"""
worker_processes {workers};
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile {connections + 1024};
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
    keepalive_requests 1000000;
    keepalive_timeout 300s;
{http}
    server {{
        listen {host}:{port} reuseport{listen};
{server}
    }}
}}
"""
    path = procs.write(f"{name}-{port}.conf", conf)
    proc = procs.start(
        ["nginx", "-c", path, "-p", d, "-e", f"{d}/error.log"], log=f"{name}-{port}.log"
    )
    wait_port(host, port, proc=proc)
    return proc


def nginx_backend(
    procs: Processes, port: int, body: str = "ok", workers: int = 1, host: str = HOST
) -> subprocess.Popen[bytes]:
    """nginx answering every request with 200 and a small static body."""
    server = f'        location / {{ return 200 "{body}"; }}'
    return start_nginx(procs, "nginx", port, server, workers=workers, host=host)


HAPROXY_MODES = {
    "tcp": "    mode tcp\n",
    # keep-alive to the backends and connection reuse, as a fair HTTP peer
    "http": "    mode http\n    option http-keep-alive\n    timeout http-keep-alive 60s\n",
}


def haproxy(
    procs: Processes,
    listen_port: int,
    backends: Sequence[tuple[str, int]],
    mode: str = "tcp",
    threads: int = 1,
    host: str = HOST,
    maxconn: int = 4096,
) -> subprocess.Popen[bytes]:
    """haproxy in `mode tcp` or `mode http`, round robin over `backends`."""
    require("haproxy")
    servers = "\n".join(f"    server s{i} {h}:{p}" for i, (h, p) in enumerate(backends))
    reuse = "    http-reuse always\n" if mode == "http" else ""
    conf = f"""
global
    nbthread {threads}
    maxconn {maxconn}
defaults
{HAPROXY_MODES[mode]}    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind {host}:{listen_port}
    default_backend be
backend be
    balance roundrobin
{reuse}{servers}
"""
    path = procs.write(f"haproxy-{mode}-{listen_port}.cfg", conf)
    proc = procs.start(["haproxy", "-f", path], log=f"haproxy-{mode}-{listen_port}.log")
    wait_port(host, listen_port, proc=proc)
    return proc


# ---------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    raw: str = field(default="", repr=False)
    # CPU time the measured server used per request (microseconds), when measured:
    # user + system, and each on its own
    cpu_us: float | None = None
    cpu_user_us: float | None = None
    cpu_sys_us: float | None = None
    # CPU time wrk itself used per request (user + system), and a peer's (the backend's)
    # when asked: the rest of what the machine spent on each request
    client_cpu_us: float | None = None
    peer_cpu_us: float | None = None


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Parse `wrk --latency` output into requests/s, p50 and p99 (milliseconds)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and p50 and p99):
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = 0
    for m in re.finditer(r"(connect|read|write|timeout) (\d+)", output):
        errors += int(m.group(2))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    return WrkResult(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors, output)


def run_wrk(
    url: str,
    connections: int = 64,
    threads: int = 2,
    duration: float = 5.0,
    extra: Sequence[str] = (),
) -> WrkResult:
    require("wrk")
    argv = [
        "wrk",
        "--latency",
        "-c",
        str(connections),
        "-t",
        str(threads),
        "-d",
        f"{duration:g}s",
    ]
    # wrk's own options go before the URL; script arguments ("--" and on) after it
    cut = list(extra).index("--") if "--" in extra else len(extra)
    argv += [*extra[:cut], url, *extra[cut:]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = parse_wrk(out.stdout)
    if res.rps > 0:  # (wrk is the only child that ends meanwhile)
        spent = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        res.client_cpu_us = spent / (res.rps * duration) * 1e6
    return res


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/<pid>/task/*/children)."""
    out = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            out.extend(_tree(kid))
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (VmRSS from /proc)."""
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by a process and its descendants."""
    user = system = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        user += int(fields[11])  # utime (clock ticks)
        system += int(fields[12])  # stime
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its descendants."""
    return sum(cpu_times(pid))


def run_wrk_measured(
    url: str,
    server_pid: int | None,
    connections: int = 64,
    threads: int = 2,
    duration: float = 5.0,
    extra: Sequence[str] = (),
    peer_pid: int | None = None,
) -> WrkResult:
    """run_wrk, also recording the CPU time `server_pid` (and children) spent per request,
    and `peer_pid`'s (and children's) when given."""
    before = cpu_times(server_pid) if server_pid else (0.0, 0.0)
    peer_before = cpu_times(peer_pid) if peer_pid else (0.0, 0.0)
    res = run_wrk(url, connections, threads, duration, extra)
    if peer_pid and res.rps > 0:
        peer_after = cpu_times(peer_pid)
        spent = sum(peer_after) - sum(peer_before)
        res.peer_cpu_us = spent / (res.rps * duration) * 1e6
    if server_pid and res.rps > 0:
        after = cpu_times(server_pid)
        requests = res.rps * duration
        res.cpu_user_us = (after[0] - before[0]) / requests * 1e6
        res.cpu_sys_us = (after[1] - before[1]) / requests * 1e6
        res.cpu_us = res.cpu_user_us + res.cpu_sys_us
    return res


# ---------------------------------------------------------------- reporting


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def print_table(rows: Sequence[tuple[str, WrkResult]], baseline: str | None = None) -> None:
    """One line per run: name, requests/s, p50, p99, errors, and ratio vs `baseline`."""
    base = {name: r for name, r in rows}.get(baseline) if baseline else None
    cpu = any(r.cpu_us is not None for _, r in rows)
    print(
        f"{'target':<22}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        + (f"{'CPU us/req':>12}" if cpu else "")
        + (f"{'vs ' + str(baseline):>16}" if base else "")
    )
    for name, r in rows:
        line = f"{name:<22}{r.rps:>12.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}"
        if cpu:
            line += f"{r.cpu_us:>12.1f}" if r.cpu_us is not None else f"{'':>12}"
        if base:
            line += f"{ratio(r.rps, base.rps):>16}"
        print(line)
