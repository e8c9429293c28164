"""The shell: CLI, options, daemon wiring, admin API, metrics and the status page.

Nothing imports this package; it imports everything below it.
"""
