#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages (as root, Debian), a venv
# with seaway and its test tools, then pytest. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS="iptables nftables conntrack nginx-light haproxy wrk curl iproute2 procps openssl chromium apache2-utils"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for pkg in $DEBS; do dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
  if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    # Never let a package's postinst start a system service (nginx, haproxy) here.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  fi
else
  echo "not root (or not Debian): skipping system packages; kernel and peer tests will skip"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

python -m pytest -q "$@"
