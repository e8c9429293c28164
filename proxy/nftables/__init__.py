"""nftables dataplane: one `seaway` table per family (ip, ip6), dispatch by verdict maps.

names (fixed and hashed object names), table (the wanted/kernel table as data, its
assembly from service ports and the deltas), builder (pure: Snapshot -> tables),
render (pure: nft -f text, whole table or one transaction of changes), state (pure:
`nft -j list table` -> TableState), simulator (pure packet tracer over the rule text),
applier (runs nft and conntrack), syncer (full / partial / read-back sync), dataplane
(NftablesDataplane for `seaway run`).
"""
