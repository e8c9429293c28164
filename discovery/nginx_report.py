"""What seaway makes of ingress-nginx annotations and ConfigMap keys, as lines of text:
`seaway check` prints them, the daemon logs them once per change.

Each line is (is_error, text). Errors are invalid values, refused Ingresses and denied
paths (`seaway check` exits 1 on any); the rest says what was recognised and what is
ignored, and why.
"""

from __future__ import annotations

from discovery.nginx_configmap import NginxGlobalSettings
from discovery.nginx_settings import EFFECT_TEXT, IngressAnnotations

Line = tuple[bool, str]


def annotation_lines(ingress: str, parsed: IngressAnnotations, prefix: str) -> list[Line]:
    """The findings for the Ingress `ingress` ("namespace/name")."""
    lines: list[Line] = []
    if parsed.recognised:
        names = ", ".join(_short(k, prefix) for k in parsed.recognised)
        lines.append((False, f"{ingress}: annotations recognised: {names}"))
    for item in parsed.ignored:
        lines.append(
            (False, f"{ingress}: metadata.annotations[{item.key}]: ignored: {item.reason}")
        )
    reported: set[str] = set()
    for problem in parsed.problems:
        lines.append((True, str(problem)))
        lines.append(
            (True, "  " + "; ".join(p for p in (problem.hint, EFFECT_TEXT[problem.effect]) if p))
        )
        reported.add(f"metadata.annotations[{problem.annotation}]: {problem.message}")
    for reason in parsed.refusals:
        if reason not in reported:
            lines.append((True, f"{ingress}: {reason}"))
    for reason in parsed.denied:
        if reason not in reported:
            lines.append((True, f"{ingress}: {reason}"))
    if parsed.refusals:
        lines.append((True, f"{ingress}: refused: the Ingress is not served"))
    elif parsed.denied:
        lines.append((True, f"{ingress}: denied: every path of the Ingress answers 503"))
    return lines


def configmap_lines(settings: NginxGlobalSettings) -> list[Line]:
    """The findings for ingress-nginx's ConfigMap (or the defaults in its place)."""
    lines: list[Line] = []
    where = settings.source
    if settings.recognised:
        lines.append((False, f"{where}: keys recognised: {', '.join(settings.recognised)}"))
    for item in settings.ignored:
        lines.append((False, f"{where}: data[{item.key}]: ignored: {item.reason}"))
    for problem in settings.problems:
        lines.append((True, str(problem)))
        keeps = "ingress-nginx keeps its default, so does seaway"
        lines.append((True, "  " + "; ".join(p for p in (problem.hint, keeps) if p)))
    return lines


def _short(key: str, prefix: str) -> str:
    return key[len(prefix) + 1 :] if key.startswith(prefix + "/") else key
