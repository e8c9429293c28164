"""iptables dataplane: kube-proxy's rule layout under the SEAWAY- prefix.

chains (stable hashed names), builder (pure: Snapshot -> Ruleset), render (pure: restore
text, full and partial), simulator (pure packet tracer), conntrack (pure: stale UDP
entries), flavor (legacy/nft detection), applier (runs the tools), syncer (full/partial
sync state), dataplane (IptablesDataplane for `seaway run`).
"""
