"""The route model's actions and filters, run at request time.

ingress/http1.py calls into this package at a few hook points, and only for routes whose
RouteResult carries a ``plan`` (ingress/filters/plan.py): a route without filters whose
action is a Forward has no plan and takes the plain path, unchanged.

- ``plan``: a RoutePlan per RouteResult, compiled once per worker when a table is applied
  (``runtime.attach_plans``): what to check on admission, how to rebuild the upstream
  head, which response edits to make, which endpoint choice and limits apply.
- ``admission``: the per-request object (``RequestState.plan``): checks run when the
  request is routed (redirects, CORS preflight, rate limits, address ranges, basic auth,
  body limit), the upstream head rebuilt, the proxy's own answers with their headers.
- ``exchange``: FilteredExchange, the Exchange for such requests: external auth before
  dispatch, endpoint choice by cookie or hash, per-route timeouts and tries, TLS to the
  pod, custom error pages, response head edits, mirroring.
- one pure module per concern: ``reply``, ``headers``, ``auth_basic``, ``cors``,
  ``ratelimit``, ``ranges``, ``affinity``, ``hashring``, ``variables``; and the I/O ones
  ``subrequest`` (auth and mirror requests on pooled upstream connections),
  ``upstream_tls``.
"""
