import proxy  # noqa: F401  # (first: SEAWAY_PURE=1 takes effect before any ingress module)
