"""The endpoint health annotations of a Service (model: discovery.model.EndpointHealth).

    seaway.dev/health-check-path:                /healthz   (active checks by HTTP GET)
    seaway.dev/health-check-interval:            5s         (any of these five turns
    seaway.dev/health-check-timeout:             2s          active checks on; without a
    seaway.dev/health-check-healthy-threshold:   2           path they connect by TCP)
    seaway.dev/health-check-unhealthy-threshold: 3
    seaway.dev/outlier-consecutive-errors:       5          (passive; 0 turns it off)
    seaway.dev/outlier-consecutive-5xx:          5          (opt-in; default 0: off)

Durations are seconds ("5", "0.5") or Go's units ("500ms", "5s", "1m"). A bad value is
an error naming the annotation, and the Service keeps its last good version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from discovery.model import (
    DEFAULT_ENDPOINT_HEALTH,
    HEALTH_CHECK_INTERVAL_ANNOTATION,
    HEALTH_CHECK_PATH_ANNOTATION,
    HEALTH_CHECK_TIMEOUT_ANNOTATION,
    HEALTHY_THRESHOLD_ANNOTATION,
    OUTLIER_5XX_ANNOTATION,
    OUTLIER_ERRORS_ANNOTATION,
    UNHEALTHY_THRESHOLD_ANNOTATION,
    EndpointHealth,
)
from discovery.parse_common import Problems, show

DEFAULT_CHECK_INTERVAL = 5.0  # seconds, when any health-check annotation turns checks on
MIN_CHECK_INTERVAL = 0.1
MAX_SECONDS = 3600.0
MAX_COUNT = 1000
CHECK_ANNOTATIONS = (
    HEALTH_CHECK_PATH_ANNOTATION,
    HEALTH_CHECK_INTERVAL_ANNOTATION,
    HEALTH_CHECK_TIMEOUT_ANNOTATION,
    HEALTHY_THRESHOLD_ANNOTATION,
    UNHEALTHY_THRESHOLD_ANNOTATION,
)
HEALTH_ANNOTATIONS = (*CHECK_ANNOTATIONS, OUTLIER_ERRORS_ANNOTATION, OUTLIER_5XX_ANNOTATION)
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m)?\Z")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
_PATH = re.compile(r"/[!-~]*\Z")  # origin-form: a slash, then visible ASCII


def seconds_from_text(text: str) -> float | None:
    """ "5", "0.5", "500ms", "5s", "1m" -> seconds; None when it is none of these."""
    m = _DURATION.match(text.strip())
    if m is None:
        return None
    return float(m.group(1)) * _UNITS[m.group(2)]


def _field(annotation: str) -> str:
    return f'metadata.annotations["{annotation}"]'


def _seconds(p: Problems, annotations: Mapping[str, str], name: str, low: float) -> float | None:
    text = annotations.get(name)
    if text is None:
        return None
    value = seconds_from_text(text)
    if value is None or not low <= value <= MAX_SECONDS:
        p.add(
            _field(name),
            f"{show(text)} is not a duration from {low:g}s to {MAX_SECONDS:g}s "
            '(seconds, or with a unit: "500ms", "5s", "1m")',
        )
        return None
    return value


def _count(p: Problems, annotations: Mapping[str, str], name: str, low: int) -> int | None:
    text = annotations.get(name)
    if text is None:
        return None
    t = text.strip()
    if not t.isdigit() or not low <= int(t) <= MAX_COUNT:
        p.add(_field(name), f"{show(text)} is not a whole number from {low} to {MAX_COUNT}")
        return None
    return int(t)


def parse_endpoint_health(p: Problems, annotations: Mapping[str, str]) -> EndpointHealth:
    if not any(name in annotations for name in HEALTH_ANNOTATIONS):
        return DEFAULT_ENDPOINT_HEALTH
    d = DEFAULT_ENDPOINT_HEALTH
    path = annotations.get(HEALTH_CHECK_PATH_ANNOTATION, "").strip()
    if path and not _PATH.match(path):
        p.add(
            _field(HEALTH_CHECK_PATH_ANNOTATION),
            f"{show(path)} is not a path (it starts with / and has no spaces)",
        )
    interval = _seconds(p, annotations, HEALTH_CHECK_INTERVAL_ANNOTATION, MIN_CHECK_INTERVAL)
    timeout = _seconds(p, annotations, HEALTH_CHECK_TIMEOUT_ANNOTATION, 0.001)
    healthy = _count(p, annotations, HEALTHY_THRESHOLD_ANNOTATION, 1)
    unhealthy = _count(p, annotations, UNHEALTHY_THRESHOLD_ANNOTATION, 1)
    errors = _count(p, annotations, OUTLIER_ERRORS_ANNOTATION, 0)
    fives = _count(p, annotations, OUTLIER_5XX_ANNOTATION, 0)
    checks = any(name in annotations for name in CHECK_ANNOTATIONS)
    return EndpointHealth(
        check_path=path,
        check_interval=(interval or DEFAULT_CHECK_INTERVAL) if checks else 0.0,
        check_timeout=timeout if timeout is not None else d.check_timeout,
        healthy_threshold=healthy if healthy is not None else d.healthy_threshold,
        unhealthy_threshold=unhealthy if unhealthy is not None else d.unhealthy_threshold,
        consecutive_errors=errors if errors is not None else d.consecutive_errors,
        consecutive_5xx=fives if fives is not None else d.consecutive_5xx,
    )
