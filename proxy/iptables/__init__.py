"""iptables dataplane: kube-proxy's rule layout under the SEAWAY- prefix.

builder (pure rules), render (restore text), simulator (pure packet tracer), flavor
(legacy/nft detection), applier (runs the tools), syncer (full/partial sync state),
dataplane (the daemon's IptablesDataplane).
"""
