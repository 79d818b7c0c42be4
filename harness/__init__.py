"""httpbench harness: runs experiments against the server binaries and records the results.

Modules, one job each:
  experiment  — TOML experiment files: schema, validation, ``--quick`` shrinking
  registry    — the built backends (build/servers/backends.json) and the loadgen binary
  production  — config files and command lines for nginx, lighttpd, h2o, Apache prefork/worker
  server      — starting, pinning, awaiting and stopping one server process group
  metrics     — /proc readings of a server's process tree
  loadgen     — running the load generator for one point and reading its JSON
  runner      — the loop over points: runs.jsonl, resume, progress, cleanup on Ctrl-C
  envinfo     — machine facts for meta.json and the ``check`` command
  analysis    — measured load, least-squares fits, flags, ranking, findings
  cli         — ``python3 -m harness run|list|check|plot|report``
"""
