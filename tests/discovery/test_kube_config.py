"""Credentials: kubeconfig (CA, client certificate, token), --master, in-cluster."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile

import aiohttp
import pytest
from kubernetes_asyncio.config import incluster_config

from discovery.kube_config import KubeConfigError, load_credentials
from discovery.kube_source import KIND_SPECS, KubeSource
from discovery.kube_watch import Backoff, KindWatcher
from discovery.model import KIND_SERVICE, ObjectKey
from discovery.store import Store
from proxy.app.options import Options
from tests.kubeapi.certs import make_pki
from tests.kubeapi.fixtures import (
    api_server,
    create,
    eventually,
    fast_settings,
    run,
    running_source,
    service,
)

WEB = ObjectKey(KIND_SERVICE, "default", "web")


def test_https_with_ca_and_client_certificate_from_kubeconfig() -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(tmp)
            async with api_server(pki=pki) as server:
                assert server.url.startswith("https://127.0.0.1:")
                create(server, service("web", "127.0.70.1"))
                async with running_source(server) as r:
                    assert r.store.get(WEB) is not None
                    creds = r.source.watchers[KIND_SERVICE].credentials
                    assert creds.ssl_context is not None
                    assert "Authorization" not in await creds.headers()

    run(main())


def test_client_certificate_is_what_gets_us_in() -> None:
    """Same server, kubeconfig without the client certificate: the TLS handshake fails,
    the source keeps retrying and never reports ready."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(tmp)
            async with api_server(pki=pki) as server:
                create(server, service("web", "127.0.70.1"))
                path = os.path.join(tmp, "kubeconfig")
                doc = json.loads(server.kubeconfig())
                del doc["users"][0]["user"]["client-certificate-data"]
                del doc["users"][0]["user"]["client-key-data"]
                with open(path, "w") as f:
                    json.dump(doc, f)
                creds = await load_credentials(path, None)
                assert creds.ssl_context is not None

                store = Store()
                ready: list[bool] = []
                source = KubeSource(Options(kubeconfig=path).kube_source_config(), fast_settings())
                task = asyncio.create_task(source.run(store, lambda: ready.append(True)))
                try:
                    await eventually(
                        lambda: (
                            source.watchers.get(KIND_SERVICE) is not None
                            and source.watchers[KIND_SERVICE].failures >= 3
                        ),
                        what="failed attempts",
                    )
                    assert ready == [] and store.get(WEB) is None
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    run(main())


def test_bearer_token_from_kubeconfig() -> None:
    async def main() -> None:
        async with api_server(token="s3cret") as server:
            create(server, service("web", "127.0.70.1"))
            async with running_source(server) as r:
                assert r.store.get(WEB) is not None
                headers = await r.source.watchers[KIND_SERVICE].credentials.headers()
                assert headers["Authorization"] == "Bearer s3cret"

    run(main())


def test_token_from_an_exec_plugin() -> None:
    """kubeconfig users with `exec:` (cloud CLIs): the plugin's token is what gets sent."""

    async def main() -> None:
        async with api_server(token="from-exec") as server:
            create(server, service("web", "127.0.70.1"))
            with tempfile.TemporaryDirectory() as tmp:
                plugin = os.path.join(tmp, "plugin.py")
                with open(plugin, "w") as f:
                    f.write(
                        "import json\nprint(json.dumps({'apiVersion': "
                        "'client.authentication.k8s.io/v1beta1', 'kind': 'ExecCredential', "
                        "'status': {'token': 'from-exec'}}))\n"
                    )
                doc = json.loads(server.kubeconfig())
                doc["users"][0]["user"] = {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": sys.executable,
                        "args": [plugin],
                    }
                }
                path = os.path.join(tmp, "kubeconfig")
                with open(path, "w") as f:
                    json.dump(doc, f)
                creds = await load_credentials(path, None)
                assert (await creds.headers())["Authorization"] == "Bearer from-exec"
                assert creds.refresh is not None
                store = Store()
                ready: list[bool] = []
                source = KubeSource(Options(kubeconfig=path).kube_source_config(), fast_settings())
                task = asyncio.create_task(source.run(store, lambda: ready.append(True)))
                try:
                    await eventually(lambda: bool(ready), what="ready with the exec token")
                    assert store.get(WEB) is not None
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    run(main())


def test_master_alone_means_no_credentials() -> None:
    async def main() -> None:
        creds = await load_credentials(None, "http://127.0.0.1:1234/")
        assert creds.host == "http://127.0.0.1:1234"
        assert creds.ssl_context is None
        assert "Authorization" not in await creds.headers()
        assert creds.source == "master http://127.0.0.1:1234/"

    run(main())


def test_master_overrides_the_kubeconfig_server_but_keeps_its_credentials() -> None:
    async def main() -> None:
        async with api_server(token="s3cret") as server:
            with tempfile.TemporaryDirectory() as tmp:
                path = server.write_kubeconfig(os.path.join(tmp, "kc"))
                creds = await load_credentials(path, "http://127.0.0.2:999")
                assert creds.host == "http://127.0.0.2:999"
                assert (await creds.headers())["Authorization"] == "Bearer s3cret"

    run(main())


def test_bad_kubeconfig_names_the_file() -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "kc")
            with open(path, "w") as f:
                f.write("apiVersion: v1\nkind: Config\nclusters: []\n")
            with pytest.raises(KubeConfigError, match=f"{path}: cannot load kubeconfig"):
                await load_credentials(path, None)
            with pytest.raises(KubeConfigError, match="cannot load kubeconfig"):
                await load_credentials(os.path.join(tmp, "missing"), None)

    run(main())


def test_not_in_a_pod_without_flags_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(KubeConfigError, match="no --kubeconfig or --master given"):
        run(load_credentials(None, None))


def test_in_cluster_service_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod's environment and service-account files, pointed at an HTTPS stand-in."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(tmp)
            token_file = os.path.join(tmp, "token")
            with open(token_file, "w") as f:
                f.write("sa-token")
            monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", token_file)
            monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", pki.ca_cert)
            async with api_server(pki=pki, token="sa-token", require_client_cert=False) as server:
                monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
                monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
                create(server, service("web", "127.0.70.1"))
                creds = await load_credentials(None, None)
                assert creds.source == "in-cluster"
                assert creds.host == f"https://127.0.0.1:{server.port}"
                assert (await creds.headers())["Authorization"] == "Bearer sa-token"

                store = Store()
                async with aiohttp.ClientSession() as session:
                    w = KindWatcher(session, creds, KIND_SPECS[0], store)
                    await w.list()
                assert store.get(WEB) is not None

    run(main())


def test_backoff_doubles_caps_and_jitters() -> None:
    mid = Backoff(initial=0.5, maximum=4.0, factor=2.0, jitter=0.5, rand=lambda: 0.5)
    assert [mid.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    mid.reset()
    assert mid.next() == 0.5
    low = Backoff(initial=1.0, jitter=0.5, rand=lambda: 0.0)
    high = Backoff(initial=1.0, jitter=0.5, rand=lambda: 1.0)
    assert (low.next(), high.next()) == (0.5, 1.5)


def test_kubeconfig_data_is_decodable() -> None:
    """The stand-in's kubeconfig embeds the CA as kubectl expects (base64 PEM)."""
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(tmp)

        async def main() -> str:
            async with api_server(pki=pki) as server:
                return server.kubeconfig()

        doc = json.loads(run(main()))
        ca = base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"])
        assert ca.startswith(b"-----BEGIN CERTIFICATE-----")
