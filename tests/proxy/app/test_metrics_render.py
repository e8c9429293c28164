"""Request metrics in Prometheus' text format (proxy/app/metrics.py), read back with
prometheus-client's own parser; and ingress-nginx's names, labels and buckets."""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client.parser import text_string_to_metric_families

from ingress.stats import (
    BYTES_IN,
    BYTES_OUT,
    COMPAT_FAMILIES,
    DURATION_B,
    DURATION_SUM,
    FAMILIES,
    HTTP,
    HTTP_WIDTH,
    REQUEST_SIZE_B,
    REQUESTS,
    RESPONSE_SIZE_B,
    SIZE_BUCKETS,
)
from proxy.app.metrics import ingress_nginx_labels, render_request_metrics
from proxy.counters import DURATION_BUCKETS, Delta, Totals


def http_row(durations: list[float], received: int, sent: int) -> list[float]:
    row = [0.0] * HTTP_WIDTH
    for d in durations:
        row[REQUESTS] += 1
        row[DURATION_SUM] += d
        row[DURATION_B + bisect_left(DURATION_BUCKETS, d)] += 1
        row[BYTES_IN] += received
        row[BYTES_OUT] += sent
        row[REQUEST_SIZE_B + bisect_left(SIZE_BUCKETS, received)] += 1
        row[RESPONSE_SIZE_B + bisect_left(SIZE_BUCKETS, sent)] += 1
    return row


def totals() -> Totals:
    t = Totals()
    key = ("shop", "front", "web", "80", "shop.test", "/cart", "GET", "200")
    odd = ("shop", "front", 'we"b\\x', "80", "", "/", "POST", "502")
    t.absorb(0, Delta({HTTP: {key: http_row([0.0004, 0.003, 0.2], 50, 150), odd: http_row(
        [2.0], 5, 95)}}))
    return t


def parsed(text: bytes) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text.decode()):
        out[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return out


def test_native_families_parse_and_sum_over_method_and_code() -> None:
    text = render_request_metrics([(totals(), FAMILIES)])
    families = parsed(text)
    requests = families["seaway_http_requests"]  # the parser strips _total
    assert ("seaway_http_requests_total",
            {"namespace": "shop", "ingress": "front", "service": "web", "port": "80",
             "method": "GET", "code": "200"}, 3.0) in requests
    odd = [s for s in requests if s[1]["code"] == "502"]
    assert odd[0][1]["service"] == 'we"b\\x'  # escaped on the wire, intact once parsed
    duration = families["seaway_http_request_duration_seconds"]
    web = {s[1].get("le"): s[2] for s in duration
           if s[1]["service"] == "web" and s[0].endswith("_bucket")}
    assert web["0.0005"] == 1 and web["0.005"] == 2 and web["0.25"] == 3 and web["+Inf"] == 3
    counts = {s[1]["service"]: s[2] for s in duration if s[0].endswith("_count")}
    assert counts == {"web": 3, 'we"b\\x': 1}


def test_ingress_nginx_names_labels_and_buckets() -> None:
    compat = COMPAT_FAMILIES["ingress-nginx"]
    text = render_request_metrics([(totals(), ())], compat, ingress_nginx_labels("k8s.io/x"))
    assert b"\nnginx_ingress_controller_requests{" in text  # no _total, as ingress-nginx
    assert b"# TYPE nginx_ingress_controller_requests counter\n" in text
    families = parsed(text)
    labels = {"canary", "controller_class", "controller_namespace", "controller_pod", "host",
              "ingress", "method", "namespace", "path", "service", "status"}
    for name in ("nginx_ingress_controller_requests",
                 "nginx_ingress_controller_request_duration_seconds",
                 "nginx_ingress_controller_request_size",
                 "nginx_ingress_controller_response_size"):
        for sample_name, sample_labels, _ in families[name]:
            assert set(sample_labels) - {"le"} == labels, sample_name
    (web,) = [s for s in families["nginx_ingress_controller_requests"]
              if s[1]["status"] == "200"]
    assert web[1]["host"] == "shop.test" and web[1]["path"] == "/cart" and web[2] == 3
    assert web[1]["controller_class"] == "k8s.io/x" and web[1]["canary"] == ""
    les = [s[1]["le"] for s in families["nginx_ingress_controller_request_duration_seconds"]
           if s[0].endswith("_bucket") and s[1]["status"] == "200"]
    # Prometheus' default buckets (ingress-nginx's --time-buckets), written as Go writes them
    assert les == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
                   "10", "+Inf"]
    assert b'le="1"' in text and b'le="1.0"' not in text
    sizes = {s[1]["le"]: s[2] for s in families["nginx_ingress_controller_request_size"]
             if s[0].endswith("_bucket") and s[1]["status"] == "200"}
    assert list(sizes) == [*(str(10 * i) for i in range(1, 11)), "+Inf"]
    assert sizes["40"] == 0 and sizes["50"] == 3  # three requests of 50 bytes
    response = {s[0]: s[2] for s in families["nginx_ingress_controller_response_size"]
                if s[1]["status"] == "200" and not s[0].endswith("_bucket")}
    assert response["nginx_ingress_controller_response_size_sum"] == 450
