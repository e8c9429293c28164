"""Manifest parsing benchmark: file -> objects for a big Service + EndpointSlice file.

    python3 bench/manifest.py [--services 10000] [--rounds 3] [--file PATH] [--kubectl]

Generates N Services and N EndpointSlices (one YAML stream, like `kubectl get -o yaml`
piped together; --kubectl adds the uid/resourceVersion/creationTimestamp/managedFields
noise kubectl prints), or reads --file. Each decoder runs in turn, alternating, for
--rounds rounds; the table shows the best CPU time (process time: the machine is shared)
and wall time per decoder, and the ratio against PyYAML's C SafeLoader:

  pyyaml-csafe       yaml.load_all(CSafeLoader)           the obvious choice
  pyyaml-cbase       yaml.load_all(CBaseLoader)           no scalar resolution at all
  pyyaml-csafe-x2    CSafeLoader on each half, 2 processes (results pickled back)
  yaml_rs            yaml_rs.loads (Rust), when installed
  ryml+json          rapidyaml tree -> JSON text -> json.loads
  ryml+orjson        rapidyaml tree -> JSON text -> orjson.loads
  json (reference)   json.loads of the same data already as JSON
  seaway             discovery.manifest.parse_manifest_text: decode + validate + objects
  seaway-exact       the same through the PyYAML reference decoder
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from discovery import yaml_decode
from discovery.manifest import _convert, parse_manifest_text

KUBECTL_META = """\
  creationTimestamp: "2024-03-11T09:21:44Z"
  resourceVersion: "{rv}"
  uid: 6c3f1f0e-8a51-4c8e-9d7e-{n:012d}
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:spec:
        f:ports: {{}}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2024-03-11T09:21:44Z"
"""


def generate(services: int, kubectl: bool = False) -> str:
    """N Services (ClusterIP, one named port) and their EndpointSlices (2 endpoints)."""
    docs = []
    for n in range(services):
        ip = f"10.{96 + n // 65536}.{n // 256 % 256}.{n % 256}"
        ep1 = f"10.244.{n // 256 % 256}.{n % 256}"
        ep2 = f"10.245.{n // 256 % 256}.{n % 256}"
        extra = KUBECTL_META.format(rv=1000 + n, n=n) if kubectl else ""
        docs.append(
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{n}\n  namespace: default\n"
            f"{extra}spec:\n  clusterIP: {ip}\n  ports:\n  - name: http\n    port: 80\n"
            f"    protocol: TCP\n    targetPort: 8080\n  type: ClusterIP\n"
        )
        docs.append(
            f"addressType: IPv4\napiVersion: discovery.k8s.io/v1\nendpoints:\n"
            f"- addresses:\n  - {ep1}\n  conditions:\n    ready: true\n"
            f"- addresses:\n  - {ep2}\n  conditions:\n    ready: true\n"
            f"kind: EndpointSlice\nmetadata:\n  labels:\n"
            f"    kubernetes.io/service-name: svc-{n}\n  name: svc-{n}-abc\n"
            f"  namespace: default\n{extra}ports:\n- name: http\n  port: 8080\n"
            f"  protocol: TCP\n"
        )
    return "---\n".join(docs)


def _load_half(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=yaml.CSafeLoader))


def decoders(text: str, as_json: str) -> dict[str, Callable[[], Any]]:
    data = text.encode()
    out: dict[str, Callable[[], Any]] = {
        "pyyaml-csafe": lambda: list(yaml.load_all(data, Loader=yaml.CSafeLoader)),
        "pyyaml-cbase": lambda: list(yaml.load_all(data, Loader=yaml.CBaseLoader)),
    }
    docs = text.split("\n---\n")
    halves = ["\n---\n".join(docs[: len(docs) // 2]), "\n---\n".join(docs[len(docs) // 2 :])]
    pool = multiprocessing.get_context("fork").Pool(2)
    out["pyyaml-csafe-x2"] = lambda: [d for part in pool.map(_load_half, halves) for d in part]
    try:
        import yaml_rs  # type: ignore[import-not-found]

        out["yaml_rs"] = lambda: yaml_rs.loads(text, parse_datetime=False)
    except ImportError:
        pass
    if yaml_decode.fast_available():
        import ryml  # type: ignore[import-untyped]

        def ryml_json(loads: Callable[[str], Any]) -> Callable[[], Any]:
            def run() -> Any:
                tree = ryml.parse_in_arena(data)
                return loads(ryml.emit_json_malloc(tree, tree.root_id()))

            return run

        out["ryml+json"] = ryml_json(json.loads)
        try:
            import orjson

            out["ryml+orjson"] = ryml_json(orjson.loads)
        except ImportError:
            pass
    out["json (reference)"] = lambda: json.loads(as_json)
    out["seaway"] = lambda: parse_manifest_text(data, "big.yaml")
    out["seaway-exact"] = lambda: _convert(yaml_decode.decode_exact(data), "big.yaml")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=10000, help="Services (and slices) to generate")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the best of each is shown")
    ap.add_argument("--file", help="parse this manifest file instead of generating one")
    ap.add_argument("--kubectl", action="store_true", help="add kubectl's metadata noise")
    args = ap.parse_args()
    text = Path(args.file).read_text() if args.file else generate(args.services, args.kubectl)
    as_json = json.dumps(list(yaml.load_all(text, Loader=yaml.CSafeLoader)), default=str)
    print(
        f"{len(text) / 1e6:.1f} MB of YAML, {text.count(chr(10) + '---' + chr(10)) + 1} documents"
    )
    runs = decoders(text, as_json)
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            result = fn()
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            if name == "seaway":
                objects, errors = result
                assert (not errors and len(objects) == 2 * args.services) or args.file, errors[:3]
            del result
            prev = best.get(name, (1e9, 1e9))
            best[name] = (min(prev[0], cpu), min(prev[1], wall))
    base = best["pyyaml-csafe"][0]
    print(f"{'decoder':18s} {'cpu s':>7s} {'wall s':>7s} {'cpu vs csafe':>13s}")
    for name, (cpu, wall) in best.items():
        print(f"{name:18s} {cpu:7.3f} {wall:7.3f} {cpu / base:12.2f}x")
    print("(pyyaml-csafe-x2 cpu counts only this process: the pool's work is in its wall time)")


if __name__ == "__main__":
    main()
