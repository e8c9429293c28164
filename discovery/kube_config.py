"""Credentials for the Kubernetes API, loaded with kubernetes_asyncio's config loaders.

Where they come from, like kube-proxy:
- `--kubeconfig PATH`: that file's current context (CA, client certificate, token, exec
  plugins, insecure-skip-tls-verify); `--master URL` then overrides the server address;
- `--master URL` alone: that URL, no credentials (an insecure local port or a proxy);
- neither: in-cluster configuration (the pod's service account token and CA, with the
  token re-read when kubelet rotates it).

The result is what the raw aiohttp watch client needs: the server URL, an SSL context
and the headers of each request.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml

# kubernetes_asyncio (about 0.5 s of CPU to import: every API model class) is imported by
# load_credentials, when the API is used: `seaway run -c FILES` only needs KubeConfigError.


class KubeConfigError(Exception):
    """Credentials could not be loaded; the message says from where and why."""


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    host: str  # "https://10.0.0.1:6443", no trailing slash
    ssl_context: ssl.SSLContext | None  # None for plain http
    configuration: Any  # kubernetes_asyncio Configuration (token refresh hooks live on it)
    source: str  # "kubeconfig /path", "master URL", "in-cluster"
    # Runs until cancelled, renewing tokens from exec plugins / auth providers (kubeconfig
    # only; in-cluster tokens are re-read from their file on each request).
    refresh: Callable[[], Awaitable[None]] | None = None

    async def headers(self) -> dict[str, str]:
        """Headers for one request (the bearer token may have been rotated since)."""
        headers = {"Accept": "application/json", "User-Agent": "seaway/0.1"}
        token = await self.configuration.get_api_key_with_prefix("BearerToken")
        if token:
            headers["Authorization"] = token if " " in token else f"Bearer {token}"
        return headers


def ssl_context_for(configuration: Any) -> ssl.SSLContext | None:
    """The SSL context kubernetes_asyncio's REST client would build for this config."""
    if not str(configuration.host).startswith("https"):
        return None
    ctx = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        ctx.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def load_credentials(kubeconfig: str | None, master: str | None) -> ApiCredentials:
    from kubernetes_asyncio.client import Configuration
    from kubernetes_asyncio.config import (
        ConfigException,
        load_incluster_config,
        load_kube_config,
    )
    from kubernetes_asyncio.config.kube_config import refresh_token

    configuration = Configuration()
    refresh: Callable[[], Awaitable[None]] | None = None
    if kubeconfig:
        source = f"kubeconfig {kubeconfig}"
        try:
            loader = await load_kube_config(
                config_file=kubeconfig, client_configuration=configuration, persist_config=False
            )
        except (ConfigException, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as e:
            detail = " ".join(str(e).split())
            raise KubeConfigError(f"{kubeconfig}: cannot load kubeconfig: {detail}") from e

        def refresh() -> Awaitable[None]:
            return refresh_token(loader, configuration)  # type: ignore[no-any-return]

        if master:
            configuration.host = master
            source += f" (server {master})"
    elif master:
        source = f"master {master}"
        configuration.host = master
    else:
        source = "in-cluster"
        try:
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException as e:
            raise KubeConfigError(
                f"no --kubeconfig or --master given and not running in a pod: {e}"
            ) from e
    host = str(configuration.host).rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise KubeConfigError(f"{source}: server {host!r} is not an http(s) URL")
    configuration.host = host
    try:
        ctx = ssl_context_for(configuration)
    except (OSError, ssl.SSLError) as e:
        raise KubeConfigError(f"{source}: cannot load TLS certificates: {e}") from e
    return ApiCredentials(host, ctx, configuration, source, refresh)
