"""The endpoint health annotations of a Service (discovery/parse_health.py): defaults, the
accepted spellings, and errors that name the annotation (the Service is then refused, so
its last good version keeps serving)."""

from __future__ import annotations

import pytest

from discovery.manifest import parse_object
from discovery.model import DEFAULT_ENDPOINT_HEALTH, EndpointHealth, Service
from discovery.parse_health import seconds_from_text
from tests.discovery.test_parse_balancing import service


def health_of(annotations: dict[str, str]) -> EndpointHealth:
    obj, errors = parse_object(service(annotations), "web.yaml")
    assert not errors, [str(e) for e in errors]
    assert isinstance(obj, Service)
    return obj.load_balancing.health


def errors_of(annotations: dict[str, str]) -> list[str]:
    obj, errors = parse_object(service(annotations), "web.yaml")
    assert obj is None
    return [str(e) for e in errors]


def test_defaults_passive_on_active_off() -> None:
    h = health_of({})
    assert h == DEFAULT_ENDPOINT_HEALTH and not h.active
    assert (h.consecutive_errors, h.consecutive_5xx) == (5, 0)


def test_any_check_annotation_turns_checks_on() -> None:
    h = health_of({"seaway.dev/health-check-path": "/healthz"})
    assert h.active and h.check_interval == 5.0 and h.check_path == "/healthz"
    h = health_of({"seaway.dev/health-check-unhealthy-threshold": "2"})
    assert h.active and h.check_path == "" and h.unhealthy_threshold == 2


def test_every_annotation() -> None:
    h = health_of({
        "seaway.dev/health-check-path": "/ready?full=1",
        "seaway.dev/health-check-interval": "500ms",
        "seaway.dev/health-check-timeout": "0.25",
        "seaway.dev/health-check-healthy-threshold": "1",
        "seaway.dev/health-check-unhealthy-threshold": "4",
        "seaway.dev/outlier-consecutive-errors": "0",
        "seaway.dev/outlier-consecutive-5xx": "3",
        "seaway.dev/load-balancer": "round-robin",
    })
    assert h == EndpointHealth("/ready?full=1", 0.5, 0.25, 1, 4, 0, 3)


def test_the_passive_knobs_alone_leave_active_checks_off() -> None:
    h = health_of({"seaway.dev/outlier-consecutive-5xx": "5"})
    assert not h.active and h.consecutive_5xx == 5


@pytest.mark.parametrize(("text", "seconds"), [("5", 5.0), ("0.5", 0.5), ("500ms", 0.5),
                                                ("2s", 2.0), ("1m", 60.0), (" 3s ", 3.0)])
def test_durations(text: str, seconds: float) -> None:
    assert seconds_from_text(text) == seconds


@pytest.mark.parametrize(
    ("annotations", "expect"),
    [
        ({"seaway.dev/health-check-interval": "soon"},
         'shop/web: metadata.annotations["seaway.dev/health-check-interval"]: "soon" is not a '
         "duration"),
        ({"seaway.dev/health-check-interval": "10ms"}, "from 0.1s to 3600s"),
        ({"seaway.dev/health-check-path": "healthz"},
         '["seaway.dev/health-check-path"]: "healthz" is not a path'),
        ({"seaway.dev/health-check-healthy-threshold": "0"}, "a whole number from 1 to 1000"),
        ({"seaway.dev/outlier-consecutive-5xx": "-1"},
         '["seaway.dev/outlier-consecutive-5xx"]: "-1" is not a whole number from 0 to 1000'),
    ],
)
def test_errors_name_the_annotation(annotations: dict[str, str], expect: str) -> None:
    errors = errors_of(annotations)
    assert len(errors) == 1 and expect in errors[0], errors
