"""Writes build/servers/backends.json: every built backend, from its own --describe.

Usage: gen_registry.py OUTPUT BINARY...
"""
import json
import pathlib
import subprocess
import sys


def main() -> int:
    output, binaries = pathlib.Path(sys.argv[1]), sys.argv[2:]
    entries = []
    for binary in binaries:
        path = pathlib.Path(binary).resolve()
        described = subprocess.run([str(path), "--describe"], check=True,
                                   capture_output=True, text=True, timeout=30)
        entry = json.loads(described.stdout)
        entry["binary"] = str(path)
        entries.append(entry)
    entries.sort(key=lambda e: e["name"])
    output.write_text(json.dumps({"backends": entries}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
