"""Values as ingress-nginx reads them: Go's strconv, nginx sizes, CIDR lists, and the
character-class validators of ingress-nginx's internal/ingress/annotations/parser.

Everything here is pure and small; the annotation and ConfigMap parsers build on it.
Where Go and Python disagree (Python's int() takes " 12", "1_000" and "١٢"; Go's
strconv.Atoi takes none of them), these functions follow Go.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

# -- Go's strconv ---------------------------------------------------------------------------

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")
_GO_INT_ANY_BASE = re.compile(
    r"[+-]?(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO]?(_?[0-7])+|[1-9](_?[0-9])*|0)\Z"
)
INT64_MAX = 2**63 - 1


def go_bool(text: str) -> bool | None:
    """strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False; else None."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    return None


def go_int(text: str) -> int | None:
    """strconv.Atoi: optional sign and decimal digits, nothing else, within int64."""
    if _GO_INT.match(text) is None:
        return None
    value = int(text)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def go_int_any_base(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), which mapstructure uses for ConfigMap integers:
    decimal, 0x.., 0o.., 0b.., a leading 0 for octal, and underscores between digits."""
    if _GO_INT_ANY_BASE.match(text) is None:
        return None
    body = text.lstrip("+-").replace("_", "")
    sign = -1 if text.startswith("-") else 1
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXbBoO":
        value = int(body[1:], 8)
    else:
        value = int(body, 0)
    value *= sign
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def normalize(text: str) -> str:
    """ingress-nginx's normalizeString: every line trimmed of surrounding space."""
    return "\n".join(line.strip() for line in text.split("\n"))


# -- nginx sizes ----------------------------------------------------------------------------

# nginx's ngx_parse_offset (client_max_body_size): digits and one optional unit; the
# controller's template only writes a location's body size when it matches this.
_NGINX_OFFSET = re.compile(r"([0-9]+)([kKmMgG]?)\Z")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def nginx_size(text: str) -> int | None:
    """An nginx size as bytes ("8m" -> 8388608, "0" -> 0); None when nginx would refuse it.
    Units are binary (k = 1024) and case-insensitive; "b" is not a unit nginx knows."""
    m = _NGINX_OFFSET.match(text.strip())
    if m is None:
        return None
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


# -- addresses ------------------------------------------------------------------------------


@lru_cache(maxsize=4096)  # the same office ranges recur on many Ingresses
def parse_cidr_list(text: str) -> tuple[tuple[str, ...], str]:
    """A comma-separated list of CIDRs and addresses, as ingress-nginx's net.ParseCIDRs
    reads it: ((canonical entries, sorted, without duplicates), "") or ((), error).

    A network keeps its prefix with host bits cleared ("10.0.0.7/8" -> "10.0.0.0/8"); an
    address stays an address ("10.0.0.7"); an IPv4-mapped IPv6 address is the IPv4 one,
    as Go prints it. Every entry must parse: an empty entry (a trailing comma) is an
    error, as in ingress-nginx. The whole value empty is the empty list."""
    if text == "":
        return (), ""
    found: set[str] = set()
    for raw in text.split(","):
        entry = raw.strip()
        canonical = _cidr_or_address(entry)
        if canonical is None:
            return (), f"{quote(entry)} is not an IP address or CIDR"
        found.add(canonical)
    return tuple(sorted(found)), ""


def _cidr_or_address(entry: str) -> str | None:
    if not entry or "%" in entry:  # Go has no zones in ParseIP/ParseCIDR
        return None
    try:
        if "/" in entry:
            if not entry.partition("/")[2].isdigit():
                return None
            return str(ipaddress.ip_network(entry, strict=False))
        ip = ipaddress.ip_address(entry)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def address_in(address: str, ranges: tuple[str, ...]) -> bool:
    """Whether an address falls in one of `ranges` (entries of parse_cidr_list)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in ranges:
        network = ipaddress.ip_network(entry, strict=False)
        if ip.version == network.version and ip in network:
            return True
    return False


# -- ingress-nginx's validators (parser/validators.go) -------------------------------------
# Go's regexp `^...$` matches the whole text; Python's `$` would also accept a trailing
# newline, so these use fullmatch. The character classes are copied as written there.

_ALNUM = r"\-._~a-zA-Z0-9/:"
_REGEX_CHARS = re.escape("^$[](){}*+?|&=\\")
_URL_CHARS = re.escape(",:?&=")

IS_VALID_REGEX = re.compile(f"[/{_ALNUM}{_REGEX_CHARS}]*")
URL_IS_VALID = re.compile(f"[{_ALNUM}{_URL_CHARS}]*")
BASIC_CHARS = re.compile(f"[/{_ALNUM}]*")
EXTENDED_CHARS = re.compile(f"[/{_ALNUM}, ]*")
CHARS_WITH_SPACE = re.compile(f"[/{_ALNUM} ]*")
NGINX_VARIABLE = re.compile(r"[A-Za-z0-9\-_${}]*")
REGEX_PATH_WITH_CAPTURE = re.compile(f"/?[{_ALNUM}/$]*")
HEADERS_VARIABLE = re.compile(r"[A-Za-z0-9\-_, ]*")
URL_WITH_NGINX_VARIABLE = re.compile(f"[{_ALNUM}, {_URL_CHARS}$]*")
_MALICIOUS = re.compile(r"[\r\n]")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def matches(pattern: re.Pattern[str], text: str, remove_spaces: bool = False) -> bool:
    """parser.ValidateRegex: the whole text matches (spaces removed first when asked) and
    holds no CR or LF."""
    if remove_spaces:
        text = text.replace(" ", "")
    return pattern.fullmatch(text) is not None and _MALICIOUS.search(text) is None


def is_server_name(text: str) -> bool:
    """parser.ValidateServerName: nginx server_name characters (regex ones included)."""
    return IS_VALID_REGEX.fullmatch(text.strip()) is not None


def is_service_name(text: str) -> bool:
    """parser.ValidateServiceName: a DNS-1035 label (a Service name)."""
    return len(text) <= 63 and _DNS1035_LABEL.fullmatch(text) is not None


# -- nginx variables in URLs ----------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def nginx_variables(text: str) -> tuple[str, ...]:
    """The nginx variables a value uses, in order ("$host/x${arg_a}" -> host, arg_a)."""
    return tuple(m.group(1) or m.group(2) for m in _VARIABLE.finditer(text))


def quote(value: str, limit: int = 80) -> str:
    """A value as messages show it: double-quoted, escapes for quotes and control
    characters, cut after `limit` characters (snippets can be long)."""
    cut = value if len(value) <= limit else value[:limit] + "..."
    escaped = cut.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


# -- proxy-next-upstream ---------------------------------------------------------------------

# ingress-nginx's annotations/proxy validUpstreamAnnotation: nginx proxy_next_upstream's
# words, separated by single spaces.
NEXT_UPSTREAM = re.compile(
    r"((error|timeout|invalid_header|http_500|http_502|http_503|http_504|http_403|http_404"
    r"|http_429|non_idempotent|off)\s?)+"
)
NEXT_UPSTREAM_HINT = (
    "words among error, timeout, invalid_header, http_500, http_502, http_503, http_504, "
    "http_403, http_404, http_429, non_idempotent, off (space separated)"
)
