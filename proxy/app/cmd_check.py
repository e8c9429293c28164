"""`seaway check -c PATH`: validate manifests the way `seaway run` would load them.

Exit 0 with a one-line summary of what was loaded, or 1 with every error on stderr, one
per line (file: object: field: message). Then, for every Ingress carrying ingress-nginx
annotations: those recognised and those ignored (why) on stdout, invalid values (with
what is accepted and what happens now), refused Ingresses and denied paths on stderr;
the same for the --configmap ConfigMap; then, per Ingress seaway would serve
(--ingress-controller), what the translation made of its annotations (translated: ...),
the problems of the Secrets its auth-secret and proxy-ssl-secret name (errors naming the
Secret's file and field, or the annotation when the Secret is missing, with what the
Ingress answers meanwhile: 503 or 401) and its warnings; then the status of the Gateway
API objects seaway owns (what it would write back in API mode).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from discovery.model import KINDS, ConfigMap, Ingress, KubeObject, ObjectKey

if TYPE_CHECKING:
    from discovery.manifest import LoadResult
    from discovery.nginx_settings import IngressAnnotations
    from discovery.snapshot import Snapshot
from proxy.app.options import (
    add_gateway_flags,
    add_ingress_nginx_flags,
    add_source_flags,
    options_from_args,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "check",
        help="validate manifest files (exit 1 listing every error)",
        description="Load the manifests of -c PATH (a file, or a directory searched "
        "recursively for *.yaml, *.yml and *.json) exactly as `seaway run` would, and "
        "report every problem, one per line: file: object: field: message. Then report, per "
        "Ingress, the ingress-nginx annotations recognised, those ignored and why, invalid "
        "values (NAMESPACE/NAME: metadata.annotations[KEY]: invalid ...) and Ingresses "
        "refused (snippets, GRPC backends, ...), and the same for the --configmap "
        "ConfigMap; then, per Ingress seaway would serve (--ingress-controller), what the "
        "translation made of its annotations (translated: ...), the problems of the Secrets "
        "its auth-secret and proxy-ssl-secret name (missing: 503; htpasswd lines seaway "
        "cannot use: 401 for those users) and its warnings; then the "
        "status of the Gateway API objects seaway owns (what it would write back in API "
        "mode). Exit 0 and a one-line summary when everything is valid, 1 otherwise. Only "
        "files are checked: --kubeconfig and --master are refused.",
    )
    add_source_flags(p)
    add_ingress_nginx_flags(p)
    add_gateway_flags(p)
    p.add_argument(
        "--ingress-controller",
        default="seaway.dev/ingress",
        metavar="NAME",
        help="IngressClass spec.controller seaway answers to, as for `seaway run`: the "
        "Ingresses it owns are translated (k8s.io/ingress-nginx to take over ingress-nginx's "
        "class)",
    )
    p.add_argument(
        "--watch-ingress-without-class",
        action="store_true",
        help="also translate Ingresses that name no class (as for `seaway run`)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="also fail on warnings (an object defined in more than one file)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from discovery.manifest import load_path

    if not args.config:
        print("seaway check: give the manifests to check with -c PATH", file=sys.stderr)
        return 2
    if args.kubeconfig or args.master:
        print(
            "seaway check: checks files only (-c); --kubeconfig/--master are not used",
            file=sys.stderr,
        )
        return 2
    result = load_path(args.config)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in result.errors:
        print(error, file=sys.stderr)
    objects = result.objects()
    nginx_errors, nginx_warnings = _report_nginx(objects, args, _secret_files(result))
    # nginx_errors: the Ingresses (and ConfigMap) with an invalid value, refusal or denial
    warnings = len(result.warnings) + nginx_warnings
    counts = Counter(o.kind for o in objects)
    per_kind = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
    files = len(result.objects_by_file)
    if result.errors or nginx_errors or (args.strict and warnings):
        parts = []
        if result.errors:
            bad_files = len({e.file for e in result.errors})
            parts.append(f"{_plural(len(result.errors), 'error')} in {_plural(bad_files, 'file')}")
        if nginx_errors:
            parts.append(_plural(nginx_errors, "object") + " with ingress-nginx errors")
        if args.strict and warnings:
            parts.append(_plural(warnings, "warning") + " (--strict)")
        print(f"{args.config}: " + ", ".join(parts), file=sys.stderr)
        return 1
    print(
        f"{args.config}: ok, {_plural(len(objects), 'object')} in {_plural(files, 'file')}"
        + (f" ({per_kind})" if per_kind else "")
    )
    if any(counts[k] for k in ("GatewayClass", "Gateway", "HTTPRoute")):
        _print_gateway_status(args, objects)
    return 0


def _report_nginx(
    objects: list[KubeObject], args: argparse.Namespace, secret_files: dict[tuple[str, str], str]
) -> tuple[int, int]:
    """Print what ingress-nginx annotations and the ConfigMap amount to, and what the
    translation made of them; (Ingresses or ConfigMaps with errors, warnings)."""
    from discovery.nginx_annotations import parse_ingress_annotations
    from discovery.nginx_configmap import parse_nginx_configmap
    from discovery.nginx_report import Line, annotation_lines, configmap_lines

    prefix, configmap = args.annotations_prefix, args.configmap
    passthrough = args.enable_ssl_passthrough
    translated, snapshot = _translate(objects, args)
    errors = warnings = 0

    def show(lines: list[Line]) -> None:
        nonlocal errors
        if any(is_error for is_error, _ in lines):
            errors += 1
        for is_error, text in lines:
            print(text, file=sys.stderr if is_error else sys.stdout)

    ingresses = sorted(
        (o for o in objects if isinstance(o, Ingress)),
        key=lambda i: (i.meta.namespace, i.meta.name),
    )
    for ingress in ingresses:
        parsed = parse_ingress_annotations(ingress, prefix, passthrough)
        where = f"{ingress.meta.namespace}/{ingress.meta.name}"
        show(annotation_lines(where, parsed, prefix))
        report = translated.get((ingress.meta.namespace, ingress.meta.name))
        if report is None:
            continue
        for line in report.applied:
            print(f"{where}: translated: {line}")
        lines, said = _secret_lines(where, parsed, snapshot, prefix, secret_files)
        show(lines)
        for warning in report.warnings:
            if not (parsed.refusals and " refused (" in warning) and warning not in said:
                warnings += 1
                print(f"warning: {warning}", file=sys.stderr)
    if configmap is not None:
        ref = "/".join(configmap)
        found = {o.key: o for o in objects}.get(ObjectKey("ConfigMap", *configmap))
        if isinstance(found, ConfigMap):
            show(configmap_lines(parse_nginx_configmap(found.data, ref)))
        else:
            warnings += 1
            print(
                f"warning: ConfigMap {ref} (--configmap) is not in these files: "
                "ingress-nginx's defaults apply",
                file=sys.stderr,
            )
    unowned = [i for i in ingresses if (i.meta.namespace, i.meta.name) not in translated]
    if any(parse_ingress_annotations(i, prefix, passthrough).has_findings for i in unowned):
        count = f"{len(unowned)} Ingress" + ("es are" if len(unowned) != 1 else " is")
        print(
            f"note: {count} not served with --ingress-controller {args.ingress_controller}, "
            "so their annotations are not translated (give the controller their IngressClass "
            "names, e.g. k8s.io/ingress-nginx)"
        )
    return errors, warnings


def _print_gateway_status(args: argparse.Namespace, objects: list[Any]) -> None:
    from discovery.gateway_attach import attach_gateways
    from discovery.gateway_status import describe
    from discovery.snapshot_builder import build_snapshot

    config = options_from_args(args).gateway_config(on_this_node=False)
    snapshot = build_snapshot(objects)
    attachment = attach_gateways(snapshot, config)
    lines = describe(snapshot, attachment, config.controller_name)
    if not lines:
        print(f"Gateway API: no GatewayClass has controllerName {config.controller_name}")
        return
    print(f"Gateway API status (controller {config.controller_name}):")
    for line in lines:
        print("  " + line)
    _print_gateway_sockets(snapshot, attachment)


def _print_gateway_sockets(snapshot: Any, attachment: Any) -> None:
    """What the L7 proxy would serve for the Gateways: a socket per address:port with the
    Gateway listeners it takes, and what the HTTPRoute translation could not honour."""
    from ingress.translate_gateway import GATEWAY_LISTENER_PREFIX, translate_gateways

    translation = translate_gateways(snapshot, attachment)
    if translation.listeners:
        print("Gateway API sockets (what `seaway run` serves):")
    for model in translation.listeners:
        members = (translation.members or {}).get(model.name, ())
        taken = ", ".join(
            f"Gateway {m.gateway} listener {m.listener} ({m.hostname or 'any host'})"
            for m in members
        )
        rules = {
            (r.source.namespace, r.source.name, r.source.rule)
            for v in model.virtual_hosts
            for r in v.routes
            if r.source.kind == "HTTPRoute"
        }
        where = model.name.removeprefix(GATEWAY_LISTENER_PREFIX)
        print(f"  {where} ({model.protocol}): {taken}; {len(rules)} HTTPRoute rule(s)")
    for warning in translation.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _secret_lines(
    where: str,
    parsed: IngressAnnotations,
    snapshot: Snapshot,
    prefix: str,
    secret_files: dict[tuple[str, str], str],
) -> tuple[list[tuple[bool, str]], set[str]]:
    """Errors about the Secrets an owned Ingress's annotations name (auth-secret,
    proxy-ssl-secret), each naming the annotation or the Secret's file and field, with
    what is answered meanwhile; and the translator's warnings they replace."""
    from ingress.nginx_secrets import ingress_secrets

    if parsed.denied or not parsed.served:
        return [], set()
    lines: list[tuple[bool, str]] = []
    said: set[str] = set()
    for problem in ingress_secrets(parsed, snapshot.auth_secrets).problems:
        said.add(problem.text(f"Ingress {where}"))
        ref = "/".join(problem.secret)
        file = secret_files.get(problem.secret)
        if file is None:
            key = f"metadata.annotations[{prefix}/{problem.annotation}]"
            lines.append((True, f"{where}: {key}: Secret {ref}: {problem.message}"))
        else:
            lines.append((True, f"{file}: Secret {ref}: {problem.message}"))
            lines.append((True, f"  the {problem.annotation} of Ingress {where}"))
        if problem.effect:
            lines.append((True, f"  {problem.effect}"))
    return lines, said


def _secret_files(result: LoadResult) -> dict[tuple[str, str], str]:
    """(namespace, name) -> the file a Secret comes from (the last file defining it)."""
    return {
        (o.meta.namespace, o.meta.name): file
        for file, objects in result.objects_by_file.items()
        for o in objects
        if o.kind == "Secret"
    }


def _translate(
    objects: list[KubeObject], args: argparse.Namespace
) -> tuple[dict[tuple[str, str], Any], Snapshot]:
    """The translator's report per owned Ingress ((namespace, name) -> ObjectReport), and
    the Snapshot it translated."""
    from discovery.nginx_configmap import IngressNginxMode
    from discovery.snapshot_builder import build_snapshot
    from ingress.translate_ingress import translate_ingresses

    controller = args.ingress_controller
    mode = IngressNginxMode.from_flags(
        args.annotations_prefix, args.configmap, controller, args.enable_ssl_passthrough
    )
    snapshot = build_snapshot(objects, nginx=mode)
    translation = translate_ingresses(snapshot, controller, args.watch_ingress_without_class)
    return {(r.namespace, r.name): r for r in translation.reports}, snapshot


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
