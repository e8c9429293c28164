"""Reading one Ingress's annotations the way ingress-nginx's parser package does, and
recording what `seaway check` reports: recognised keys, ignored ones, invalid values,
refusals and denials.

ingress-nginx's `checkAnnotation` + `parseString`: a key with an empty value counts as
absent; an alias (whitelist-source-range for allowlist-source-range) is read only when
the main key is absent or empty; a value is validated as written, then stored with
every line trimmed (`normalize`), and a value that trims to nothing counts as absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from discovery.nginx_settings import AnnotationProblem, Effect, Ignored
from discovery.nginx_values import go_bool, go_int, matches, nginx_variables, normalize, quote

# Variables seaway can expand in auth-url, auth-signin and upstream-hash-by; the
# families (arg_NAME, http_NAME, cookie_NAME) by prefix.
SUPPORTED_VARIABLES = frozenset(
    {
        "host",
        "http_host",
        "best_http_host",
        "scheme",
        "pass_access_scheme",
        "request_uri",
        "escaped_request_uri",
        "uri",
        "args",
        "query_string",
        "request_method",
        "remote_addr",
        "binary_remote_addr",
        "server_name",
        "server_port",
    }
)
VARIABLE_FAMILIES = ("arg_", "http_", "cookie_")

BOOL_HINT = 'use "true" or "false"'


class AnnotationReader:
    """One Ingress's annotations under one prefix, read once each."""

    __slots__ = (
        "_present",
        "_problems",
        "_read",
        "annotations",
        "denied",
        "ignored",
        "ingress",
        "prefix",
        "recognised",
        "refusals",
    )

    def __init__(self, annotations: Mapping[str, str], prefix: str, ingress: str) -> None:
        self.annotations = annotations
        self.prefix = prefix + "/"
        self.ingress = ingress  # "namespace/name"
        self.recognised: dict[str, None] = {}  # full keys, in reading order
        self.ignored: dict[str, str] = {}  # full key -> reason
        self._problems: list[AnnotationProblem] = []
        self._read: set[str] = set()  # full keys looked at
        # Short names present under the prefix: the many absent ones cost one set lookup.
        n = len(self.prefix)
        self._present = {k[n:] for k in annotations if k.startswith(self.prefix)}
        self.refusals: list[str] = []
        self.denied: list[str] = []

    def key(self, name: str) -> str:
        return self.prefix + name

    def present(self, name: str) -> bool:
        """Whether `name` is set to a non-empty value."""
        return name in self._present and bool(self.annotations[self.prefix + name])

    # -- reads ----------------------------------------------------------------------------

    def raw(self, name: str, aliases: tuple[str, ...] = ()) -> tuple[str, str] | None:
        """(full key, value as written) of the first non-empty of name and its aliases."""
        for candidate in (name, *aliases):
            if candidate not in self._present:
                continue
            key = self.prefix + candidate
            self._read.add(key)
            value = self.annotations[key]
            if value == "":
                self.ignored[key] = "empty value: treated as absent, as ingress-nginx does"
                continue
            return key, value
        return None

    def text(
        self,
        name: str,
        valid: Callable[[str], bool] | re.Pattern[str],
        what: str,
        hint: str,
        effect: Effect,
        aliases: tuple[str, ...] = (),
        *,
        remove_spaces: bool = False,
    ) -> str | None:
        """The value (lines trimmed) when present and valid; None when absent or invalid
        (the problem is recorded with `effect`). `valid` is a check, or a pattern the
        whole value must match (parser.ValidateRegex, spaces removed first when asked)."""
        found = self.raw(name, aliases)
        if found is None:
            return None
        key, value = found
        ok = matches(valid, value, remove_spaces) if isinstance(valid, re.Pattern) else valid(value)
        if not ok:
            self.problem(key, f"invalid {what} {quote(value)}", effect, hint)
            return None
        value = normalize(value)
        if not value:
            self.ignored[key] = "blank value: treated as absent, as ingress-nginx does"
            return None
        self.recognised[key] = None
        return value

    def choice(
        self,
        name: str,
        options: tuple[str, ...],
        what: str,
        effect: Effect,
        *,
        case_sensitive: bool = True,
        remove_spaces: bool = False,
        hint: str = "",
    ) -> str | None:
        """parser.ValidateOptions: one of `options` (trimmed, lower-cased first unless
        case_sensitive); returns the option itself, None when absent or invalid."""

        def canonical(value: str) -> str:
            value = value.replace(" ", "") if remove_spaces else value.strip()
            return value if case_sensitive else value.lower()

        found = self.text(
            name,
            lambda v: canonical(v) in options,
            what,
            hint or " or ".join(f'"{o}"' for o in options),
            effect,
        )
        return None if found is None else canonical(found)

    def flag(self, name: str, effect: Effect) -> bool | None:
        """A Go boolean ("true", "false", "1", "0", "t", "f", ...); None when absent or
        invalid."""
        found = self.raw(name)
        if found is None:
            return None
        key, value = found
        parsed = go_bool(value)
        if parsed is None:
            self.problem(key, f"invalid boolean {quote(value)}", effect, BOOL_HINT)
            return None
        self.recognised[key] = None
        return parsed

    def integer(
        self,
        name: str,
        effect: Effect,
        what: str = "integer",
        hint: str = "a whole number",
        minimum: int | None = None,
    ) -> int | None:
        """A Go integer (strconv.Atoi); None when absent or invalid. `minimum` is seaway's
        own sanity check (ingress-nginx would hand a negative timeout to nginx, whose
        reload then fails)."""
        found = self.raw(name)
        if found is None:
            return None
        key, value = found
        parsed = go_int(value)
        if parsed is None or (minimum is not None and parsed < minimum):
            self.problem(key, f"invalid {what} {quote(value)}", effect, hint)
            return None
        self.recognised[key] = None
        return parsed

    def variables_ok(self, name: str, value: str, effect: Effect) -> bool:
        """Whether seaway can expand every nginx variable `value` uses; if not, a problem
        with `effect` names the first one it cannot."""
        unknown = [
            v
            for v in nginx_variables(value)
            if v not in SUPPORTED_VARIABLES and not v.startswith(VARIABLE_FAMILIES)
        ]
        if not unknown:
            return True
        self.problem(
            self.prefix + name,
            f"unsupported nginx variable ${unknown[0]} in {quote(value)}",
            effect,
            "seaway provides $host, $scheme, $request_uri, $escaped_request_uri, $uri, "
            "$args, $remote_addr, $arg_NAME, $http_NAME, $cookie_NAME and a few more",
        )
        return False

    # -- findings -------------------------------------------------------------------------

    def problem(self, key: str, message: str, effect: Effect, hint: str = "") -> None:
        self.recognised.pop(key, None)
        self._problems.append(AnnotationProblem(self.ingress, key, message, effect, hint))
        if effect == "refused":
            self.refusals.append(f"metadata.annotations[{key}]: {message}")
        elif effect == "denied":
            self.denied.append(f"metadata.annotations[{key}]: {message}")

    def ignore(self, name: str, reason: str) -> None:
        """Mark a present key (short name) as having no effect, for `reason`."""
        key = self.prefix + name
        if self.present(name):
            self.recognised.pop(key, None)
            self._read.add(key)
            if not any(p.annotation == key for p in self._problems):
                self.ignored[key] = reason

    def ignore_all(self, names: tuple[str, ...], reason: str) -> None:
        for name in names:
            self.ignore(name, reason)

    def refuse(self, key: str, reason: str) -> None:
        """The Ingress is not served; `reason` names the annotation."""
        self.recognised.pop(key, None)
        self._read.add(key)
        self.refusals.append(f"metadata.annotations[{key}]: {reason}")

    def deny(self, key: str, reason: str) -> None:
        """Every path of the Ingress answers 503."""
        self.recognised.pop(key, None)
        self.denied.append(f"metadata.annotations[{key}]: {reason}")

    @property
    def problems(self) -> tuple[AnnotationProblem, ...]:
        return tuple(self._problems)

    def unread(self) -> list[str]:
        """Keys under the prefix nothing read (unsupported or unknown annotations)."""
        return sorted(
            k for k in self.annotations if k.startswith(self.prefix) and k not in self._read
        )

    def ignored_list(self) -> tuple[Ignored, ...]:
        return tuple(Ignored(k, r) for k, r in sorted(self.ignored.items()))
