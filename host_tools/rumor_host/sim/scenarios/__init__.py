"""The simulator's scenario scripts: runs that add faults, attackers or a
misbehaving node to the engine through its Hooks, and measure from ground
truth.

- resilience (`make resilience`): loss, reboots, a partition, a replayer and
  a forger at once; attackers.py holds the two attackers, truth.py the
  ground-truth recorder and its definitions;
- fairness (`make fairness`): one node floods while ten publish normally,
  fairness on vs off, evictions seen through the core's on_evict hook;
- common: the network key, and the command-line helper every script uses
  (--out, --seeds, --markdown, the report's stamp and JSON).
"""
