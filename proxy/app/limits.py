"""Process limits at start: the open-files limit, and the connection limit derived from it.

Like Go's runtime and HAProxy, seaway raises its soft RLIMIT_NOFILE to the hard limit
at start (many containers start with a soft limit of 1,024 and a hard one far above),
and logs both. Worker processes inherit the raised limit.

`--max-connections auto` (the default) allows each worker half of what is left of that
limit after a reserve for listeners, the admin server, config and logs: every client
connection at L7 may hold an upstream connection too, so a worker at its limit answers
503 (L7) or refuses (L4) before it ever runs out of descriptors.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("seaway.limits")

RESERVE = 100  # descriptors kept for listeners, admin, logs, config, worker pipes
NR_OPEN = "/proc/sys/fs/nr_open"  # the kernel's ceiling when the hard limit is unlimited


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one; returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open(NR_OPEN) as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
        else:
            log.info("open files limit: soft %d raised to the hard limit %s", soft, _show(hard))
            return target, hard
    log.info("open files limit: soft %s, hard %s", _show(soft), _show(hard))
    return soft, hard


def auto_max_connections(nofile: int) -> int:
    """Client connections per worker that leave room for their upstream connections."""
    return max(1, (nofile - RESERVE) // 2)


def _show(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
