from proxy import sources_first

if sources_first.wanted():  # SEAWAY_PURE=1: interpreted sources, not the compiled build
    sources_first.install()
