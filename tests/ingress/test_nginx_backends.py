"""ingress-nginx limits, timeouts and backend annotations in the route table:
proxy-body-size, proxy-*-timeout, proxy-next-upstream(-tries, -timeout) (over the ConfigMap's
defaults, which are the listener's filters), backend-protocol, upstream-vhost,
service-upstream, default-backend, custom-http-errors, server-alias. Each test names the
ingress-nginx e2e test or source it follows."""

from __future__ import annotations

from dataclasses import replace

from discovery.nginx_configmap import parse_nginx_configmap
from discovery.snapshot import EndpointInfo
from ingress import selfsigned
from ingress.filter_headers import error_page_headers
from ingress.route_actions import edit_header_lines, find_filter
from ingress.route_filters import (
    BodyLimit,
    ErrorPages,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    SourceRanges,
    Timeouts,
    UpstreamProtocol,
)
from tests.ingress import routerkit as k
from tests.ingress.nginxkit import NGINX, ann, ing, name, path, secret, translate

HOST = "proxy.foo.com"


def test_configmap_defaults_are_the_listeners_filters() -> None:
    """config.NewDefault: proxy-body-size 1m, connect 5 s, read and send 60 s, 3 tries,
    HSTS max-age=31536000; includeSubDomains on HTTPS answers; none of it without
    ingress-nginx mode."""
    t = translate(ing("p", HOST, path("/")), nginx=NGINX)
    assert t.listener.filters == (
        BodyLimit(1024 * 1024),
        Timeouts(5.0, 60.0, 60.0),
        Retry(3),
        ResponseHeaders(
            set=(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),),
            https_only=True,
        ),
    )
    settings = parse_nginx_configmap(
        {"hsts": "false", "block-cidrs": "192.0.2.0/24", "custom-http-errors": "404,503",
         "proxy-body-size": "8m"}, "ingress-nginx/controller")
    t = translate(ing("p", HOST, path("/")), nginx=settings)
    assert t.listener.filters[0] == BodyLimit(8 * 1024 * 1024)
    assert SourceRanges(deny=("192.0.2.0/24",)) in t.listener.filters
    assert ErrorPages((404, 503)) in t.listener.filters
    assert not any(isinstance(f, ResponseHeaders) for f in t.listener.filters)


def test_proxy_body_size_and_timeouts() -> None:
    """e2e proxy.go "should set proxy client-max-body-size to 8m" and "should set valid
    proxy timeouts"; a value equal to the ConfigMap's adds no route filter."""
    annotations = ann(proxy_body_size="8m", proxy_connect_timeout="2", proxy_read_timeout="20",
                      proxy_send_timeout="30", proxy_next_upstream_tries="5")
    t = translate(ing("p", HOST, path("/"), annotations=annotations), nginx=NGINX)
    filters = t.ask(HOST, "/").filters
    assert find_filter(filters, BodyLimit) == BodyLimit(8 * 1024 * 1024)
    assert find_filter(filters, Timeouts) == Timeouts(2.0, 20.0, 30.0)
    assert find_filter(filters, Retry) == Retry(5)
    only_read = translate(ing("p", HOST, path("/"), annotations=ann(proxy_read_timeout="120")),
                          nginx=NGINX)
    assert find_filter(only_read.ask(HOST, "/").filters, Timeouts) == Timeouts(5.0, 120.0, 60.0)
    same = translate(ing("p", HOST, path("/"), annotations=ann(
        proxy_body_size="1m", proxy_read_timeout="60")), nginx=NGINX)
    assert same.ask(HOST, "/").filters == ()
    unlimited = translate(ing("p", HOST, path("/"), annotations=ann(proxy_body_size="0")),
                          nginx=NGINX)
    assert find_filter(unlimited.ask(HOST, "/").filters, BodyLimit) == BodyLimit(0)


def test_proxy_next_upstream() -> None:
    """e2e annotations/proxy.go "should build proxy next upstream" (error timeout http_502,
    timeout 10, tries 5) and "... using configmap values" (timeout http_502, 53, 44);
    template.go buildNextUpstream: the ConfigMap's retry-non-idempotent adds
    non_idempotent; nginx's ``off`` wins over the other words; an annotation equal to
    the ConfigMap's adds no route filter; an invalid value keeps the ConfigMap's."""
    annotations = ann(proxy_next_upstream="error timeout http_502",
                      proxy_next_upstream_timeout="10", proxy_next_upstream_tries="5")
    t = translate(ing("p", HOST, path("/"), annotations=annotations), nginx=NGINX)
    assert find_filter(t.ask(HOST, "/").filters, Retry) == Retry(
        5, ("error", "timeout"), (502,), False, 10.0
    )
    cm = parse_nginx_configmap({"proxy-next-upstream": "timeout http_502",
                                "proxy-next-upstream-timeout": "53",
                                "proxy-next-upstream-tries": "44"}, "ingress-nginx/controller")
    assert cm.problems == ()
    t = translate(ing("p", HOST, path("/")), nginx=cm)
    assert find_filter(t.listener.filters, Retry) == Retry(44, ("timeout",), (502,), False, 53.0)
    assert t.ask(HOST, "/").filters == ()
    cm = parse_nginx_configmap({"retry-non-idempotent": "true"}, "ingress-nginx/controller")
    t = translate(ing("p", HOST, path("/")), nginx=cm)
    assert find_filter(t.listener.filters, Retry) == Retry(3, ("error", "timeout"), (), True)
    off = translate(ing("p", HOST, path("/"), annotations=ann(
        proxy_next_upstream="error off http_503")), nginx=NGINX)
    assert find_filter(off.ask(HOST, "/").filters, Retry) == Retry(3, (), (), False)
    same = translate(ing("p", HOST, path("/"), annotations=ann(
        proxy_next_upstream="error timeout", proxy_next_upstream_tries="3")), nginx=NGINX)
    assert same.ask(HOST, "/").filters == ()
    bad = translate(ing("p", HOST, path("/"), annotations=ann(
        proxy_next_upstream="error;timeout")), nginx=NGINX)
    assert bad.ask(HOST, "/").filters == ()
    bad_cm = parse_nginx_configmap({"proxy-next-upstream": "sometimes"}, "ns/cm")
    assert [p.key for p in bad_cm.problems] == ["proxy-next-upstream"]
    assert bad_cm.proxy_next_upstream == "error timeout"
    standalone = translate(ing("p", HOST, path("/"), annotations=ann(
        proxy_next_upstream="error timeout invalid_header non_idempotent")))
    assert find_filter(standalone.ask(HOST, "/").filters, Retry) == Retry(
        3, ("error", "timeout", "invalid_header"), (), True
    )


def test_invalid_sizes_and_timeouts_keep_the_default() -> None:
    """e2e proxy.go "should not set proxy client-max-body-size to incorrect value" and
    "should not set invalid proxy timeouts"."""
    t = translate(ing("p", HOST, path("/"), annotations=ann(
        proxy_body_size="10x", proxy_read_timeout="1h")), nginx=NGINX)
    assert t.ask(HOST, "/").filters == ()


def test_backend_protocol_https_and_auto() -> None:
    """e2e backendprotocol.go: HTTPS -> proxy_pass https:// (any case), AUTO_HTTP ->
    $scheme://; proxyssl/: verification only with proxy-ssl-secret + proxy-ssl-verify."""
    for value in ("HTTPS", "https"):
        t = translate(ing("b", HOST, path("/"), annotations=ann(backend_protocol=value)))
        assert find_filter(t.ask(HOST, "/").filters, UpstreamProtocol) == UpstreamProtocol("HTTPS")
    t = translate(ing("b", HOST, path("/"), annotations=ann(backend_protocol="AUTO_HTTP")))
    assert find_filter(t.ask(HOST, "/").filters, UpstreamProtocol) == UpstreamProtocol("AUTO")
    ca, _ = selfsigned.generate("pods-ca", ["pod.internal"])
    t = translate(ing("b", HOST, path("/"), annotations=ann(
        backend_protocol="HTTPS", proxy_ssl_secret="default/ca", proxy_ssl_verify="on",
        proxy_ssl_name="pod.internal", proxy_ssl_server_name="on", proxy_ssl_verify_depth="2")),
        secrets=[secret("ca", ca_crt=ca)])
    assert find_filter(t.ask(HOST, "/").filters, UpstreamProtocol) == UpstreamProtocol(
        "HTTPS", True, "pod.internal", True, ("default", "ca"), 2, ca
    )


def test_upstream_vhost() -> None:
    """e2e upstreamvhost.go "set host to upstreamvhost.bar.com": proxy_set_header Host
    "upstreamvhost.bar.com"; with a rewrite it is the same Rewrite filter."""
    host = "upstreamvhost.foo.com"
    vhost = ann(upstream_vhost="upstreamvhost.bar.com")
    t = translate(ing("u", host, path("/"), annotations=vhost))
    assert find_filter(t.ask(host, "/").filters, Rewrite) == Rewrite(
        hostname="upstreamvhost.bar.com"
    )
    t = translate(ing("u", host, path("/a"), annotations=ann(
        upstream_vhost="up.bar.com", rewrite_target="/b")))
    rewrite = find_filter(t.ask(host, "/a").filters, Rewrite)
    assert rewrite is not None and rewrite.hostname == "up.bar.com" and rewrite.path is not None


def test_service_upstream() -> None:
    """e2e serviceupstream.go: the annotation, or the ConfigMap's service-upstream, makes
    the Service's cluster IP and port the one endpoint; "false" on the Ingress wins over
    the ConfigMap."""
    cluster = (EndpointInfo("10.96.0.10", 80),)
    t = translate(ing("s", HOST, path("/"), annotations=ann(service_upstream="true")))
    assert t.ask(HOST, "/").endpoints == cluster
    t = translate(ing("s", HOST, path("/")), nginx=replace(NGINX, service_upstream=True))
    assert t.ask(HOST, "/").endpoints == cluster
    t = translate(ing("s", HOST, path("/"), annotations=ann(service_upstream="false")),
                  nginx=replace(NGINX, service_upstream=True))
    assert t.ask(HOST, "/").endpoints == (EndpointInfo("10.1.0.1", 8080),)


def test_service_upstream_serves_a_port_without_ready_endpoints() -> None:
    """controller.go createUpstreams: with service-upstream the cluster IP is the endpoint
    whatever the Service's endpoints are."""
    empty = k.service_port("web", endpoints=())
    t = translate(ing("s", HOST, path("/"), annotations=ann(service_upstream="true")),
                  services=(), ports=[empty])
    r = t.ask(HOST, "/")
    assert (r.status, r.endpoints) == (0, (EndpointInfo("10.96.0.10", 80),))


def test_default_backend_answers_for_a_service_without_endpoints() -> None:
    """e2e default_backend.go "should use a custom default backend as upstream": the
    rule's Service "invalid" does not exist, so the default-backend Service answers, asked
    with x-code=503, x-ingress-name, x-service-name=invalid (nginx.tmpl)."""
    host = "default-backend"
    t = translate(
        ing(host, host, path("/", "invalid"), annotations=ann(default_backend="echo")),
        services=("echo",),
    )
    r = t.ask(host, "/alma/armud")
    assert (name(r), r.status) == ("echo", 0)
    headers = find_filter(r.filters, RequestHeaders)
    assert headers is not None
    lines = edit_header_lines([b"Accept: text/html\r\n", b"X-Code: 1\r\n"], headers)
    assert lines == [
        b"Accept: text/html\r\n",
        b"X-Code: 503\r\n",
        b"X-Namespace: default\r\n",
        b"X-Ingress-Name: default-backend\r\n",
        b"X-Service-Name: invalid\r\n",
        b"X-Service-Port: 80\r\n",
        b"X-Format: text/html\r\n",
    ]
    usable = translate(ing(host, host, path("/", "web"), annotations=ann(default_backend="echo")),
                       services=("web", "echo"))
    assert name(usable.ask(host, "/")) == "web"
    assert usable.ask(host, "/").filters == ()
    missing = translate(ing(host, host, path("/", "invalid"),
                            annotations=ann(default_backend="gone")), services=())
    assert missing.ask(host, "/").status == 503  # a default backend without endpoints: 503


def test_custom_http_errors() -> None:
    """e2e customhttperrors.go "configures Nginx correctly": error_page for each code, to
    the default-backend annotation's Service when set (custom-default-backend-...), else
    ingress-nginx's default backend (seaway: its own page for the code); nginx.tmpl
    CUSTOM_ERRORS: the error backend is asked with X-Code, X-Format, X-Original-URI,
    X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port."""
    host = "customerrors.foo.com"
    t = translate(ing("c", host, path("/"), annotations=ann(custom_http_errors="404,500")))
    pages = find_filter(t.ask(host, "/").filters, ErrorPages)
    assert pages == ErrorPages((404, 500), None, "default", "c", "web", "80")
    t = translate(ing("c", host, path("/"), annotations=ann(
        custom_http_errors="404, 503", default_backend="from-annotation")),
        services=("web", "from-annotation"))
    pages = find_filter(t.ask(host, "/x").filters, ErrorPages)
    assert pages is not None and pages.codes == (404, 503)
    assert pages.backend is not None and pages.backend.key == "default/from-annotation:80"
    assert error_page_headers(pages, 503, b"application/json", b"/x?y") == [
        ("X-Code", "503"),
        ("X-Format", "application/json"),
        ("X-Original-URI", "/x?y"),
        ("X-Namespace", "default"),
        ("X-Ingress-Name", "c"),
        ("X-Service-Name", "web"),
        ("X-Service-Port", "80"),
    ]


def test_server_alias() -> None:
    """e2e alias.go: "should return status code 200 for host 'foo' and 'bar'", and for
    hosts defined in two Ingresses with one alias (the alias serves both Ingresses'
    paths); without it, "bar" is 404."""
    t = translate(ing("foo", "foo", path("/")))
    assert name(t.ask("bar", "/")) == "404"
    t = translate(
        ing("app-a", "foo", path("/app-a"), created="1"),
        ing("app-b", "foo", path("/app-b"), annotations=ann(server_alias="bar"), created="2"),
    )
    assert t.vhost("foo").hostnames == ("foo", "bar")
    for host in ("foo", "bar"):
        assert name(t.ask(host, "/app-a")) == "web"
        assert name(t.ask(host, "/app-b")) == "web"


def test_server_alias_never_takes_a_rule_host_and_wildcards_match_deeper() -> None:
    """controller.go createServers: an alias that is a server's host name is dropped;
    nginx's server_name "*.x" matches any number of labels."""
    t = translate(
        ing("a", "a.test", path("/", "a"), annotations=ann(server_alias="b.test,*.c.test"),
            created="1"),
        ing("b", "b.test", path("/", "b"), created="2"),
        services=("a", "b"),
    )
    assert name(t.ask("b.test", "/")) == "b"
    assert name(t.ask("x.y.c.test", "/")) == "a"
    assert any("server-alias b.test left out" in w for w in t.warnings())
