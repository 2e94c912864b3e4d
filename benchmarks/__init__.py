"""Side-by-side benchmarks of raworc-spawner and KubeSpawner 7.1 on kubesim.

Run ``python -m benchmarks --help`` (or ``make bench ARGS=...``); results are described in
``BENCHMARKS.md``. Every process the harness starts (kubesim, one process per spawner side, the
event-flood generator, the REST servers and the load generator) talks only to 127.0.0.1 and is
stopped when the run ends, also on failure.
"""
