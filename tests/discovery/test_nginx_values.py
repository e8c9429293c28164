"""Values read as ingress-nginx (Go) reads them. Each table names the Go function or the
ingress-nginx test it follows."""

from __future__ import annotations

import pytest

from discovery.nginx_values import (
    BASIC_CHARS,
    URL_IS_VALID,
    address_in,
    go_bool,
    go_int,
    go_int_any_base,
    is_server_name,
    is_service_name,
    matches,
    nginx_size,
    nginx_variables,
    normalize,
    parse_cidr_list,
    quote,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    # strconv.ParseBool (Go's strconv/atob.go): exactly these spellings.
    [
        ("true", True), ("True", True), ("TRUE", True), ("t", True), ("T", True), ("1", True),
        ("false", False), ("False", False), ("FALSE", False), ("f", False), ("0", False),
        ("yes", None), ("on", None), ("tRuE", None), (" true", None), ("", None), ("2", None),
    ],
)
def test_go_bool(text: str, expected: bool | None) -> None:
    assert go_bool(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    # strconv.Atoi: sign and ASCII digits only; Python's int() would take the others.
    [
        ("60", 60), ("-5", -5), ("+7", 7), ("007", 7), ("0", 0),
        (" 60", None), ("60s", None), ("1_000", None), ("1e3", None), ("0x10", None),
        ("١٢", None), ("", None), ("9223372036854775808", None),
    ],
)
def test_go_int(text: str, expected: int | None) -> None:
    assert go_int(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    # strconv.ParseInt(s, 0, 64), as mapstructure decodes ConfigMap integers.
    [("503", 503), ("0x1AD", 429), ("0o17", 15), ("017", 15), ("0b11", 3), ("1_000", 1000),
     ("-0x10", -16), ("0", 0), ("08", None), ("0x", None), ("_1", None), ("1__0", None)],
)
def test_go_int_any_base(text: str, expected: int | None) -> None:
    assert go_int_any_base(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    # nginx's ngx_parse_offset as ingress-nginx's template checks it (nginxOffsetRegex);
    # units binary, case-insensitive. annotations.md#custom-max-body-size: "8m".
    [("8m", 8 * 1024**2), ("1M", 1024**2), ("100k", 102400), ("2g", 2 * 1024**3),
     ("1000", 1000), ("0", 0), (" 8m ", 8 * 1024**2),
     ("10x", None), ("10b", None), ("1.5m", None), ("10 m", None), ("m", None), ("", None),
     ("-1", None)],
)
def test_nginx_size(text: str, expected: int | None) -> None:
    assert nginx_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    # net.ParseCIDRs (internal/net/ipnet.go): networks masked, addresses kept, sorted,
    # deduplicated; annotations.md#whitelist-source-range: "10.0.0.0/24,172.10.0.1".
    [
        ("10.0.0.0/24,172.10.0.1", ("10.0.0.0/24", "172.10.0.1")),
        ("10.0.0.7/8", ("10.0.0.0/8",)),
        (" 192.168.0.1 , 10.0.0.0/8,192.168.0.1", ("10.0.0.0/8", "192.168.0.1")),
        ("2001:db8::1/32,::1", ("2001:db8::/32", "::1")),
        ("::ffff:10.1.2.3", ("10.1.2.3",)),
        ("", ()),
    ],
)
def test_cidr_lists(text: str, expected: tuple[str, ...]) -> None:
    assert parse_cidr_list(text) == (expected, "")


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("10.0.0.0/24,", '"" is not an IP address or CIDR'),  # Go fails on the empty entry
        ("10.0.0.0/33", '"10.0.0.0/33" is not an IP address or CIDR'),
        ("010.0.0.1", '"010.0.0.1" is not an IP address or CIDR'),  # Go rejects leading 0s
        ("fe80::1%eth0", '"fe80::1%eth0" is not an IP address or CIDR'),
        ("10.0.0.0/8/1", '"10.0.0.0/8/1" is not an IP address or CIDR'),
        ("example.com", '"example.com" is not an IP address or CIDR'),
    ],
)
def test_cidr_list_errors(text: str, bad: str) -> None:
    assert parse_cidr_list(text) == ((), bad)


def test_address_in() -> None:
    ranges, _ = parse_cidr_list("10.0.0.0/8,192.168.1.7,2001:db8::/32")
    assert address_in("10.9.9.9", ranges) and address_in("192.168.1.7", ranges)
    assert address_in("2001:db8::5", ranges)
    assert not address_in("192.168.1.8", ranges) and not address_in("junk", ranges)


@pytest.mark.parametrize(
    ("value", "ok"),
    # parser/validators_test.go TestValidateArrayOfServerName, one name at a time.
    [
        ("something.com", True),
        ("*.something.com", True),
        (r"~^www\d+\.example\.com$", True),
        ("http://some.test.env.com:2121/$someparam=1&$someotherparam=2", True),
        ("*.so*mething.com", True),
        ("lolo;xpto.com", False),
    ],
)
def test_server_names(value: str, ok: bool) -> None:
    assert is_server_name(value) is ok


def test_validators_refuse_line_breaks_and_follow_the_go_classes() -> None:
    # parser.ValidateRegex: MaliciousRegex refuses CR and LF whatever the class allows.
    assert matches(BASIC_CHARS, "ns/secret") and not matches(BASIC_CHARS, "ns/se cret")
    assert matches(BASIC_CHARS, "ns/se cret", remove_spaces=True)
    assert not matches(URL_IS_VALID, "https://a.example/x\nb")
    assert not matches(URL_IS_VALID, "https://a.example/%20")  # no % in URLIsValidRegex
    assert matches(URL_IS_VALID, "https://a.example:8443/p?a=1&b=2")
    assert is_service_name("web-1") and not is_service_name("1web") and not is_service_name("Web")


def test_normalize_quote_and_variables() -> None:
    # parser/main_test.go TestGetStringAnnotation: every line trimmed.
    assert normalize("  A \n\tB\n") == "A\nB\n"
    assert quote('a"b\n' + "x" * 100) == '"a\\"b\\n' + "x" * 76 + '..."'
    assert nginx_variables("https://$host/x?rd=${escaped_request_uri}&$arg_a") == (
        "host",
        "escaped_request_uri",
        "arg_a",
    )
