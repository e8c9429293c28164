"""Load-balancing algorithms (pure): round robin, least request (power of two choices),
EWMA latency and Maglev consistent hashing. Dataplanes use them through
proxy/balancer.py (`new_balancer`, `Picker`)."""
