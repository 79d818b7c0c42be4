"""Writes build/servers/backends.json: every built backend, and every reference server (the
floor of a backend's model, servers/reference/), each from its own --describe.

Usage: gen_registry.py OUTPUT BACKEND_BINARY... [--references REFERENCE_BINARY...]

References go under their own key, "references", so that whatever iterates "backends" (the e2e
suite, experiments, the report) never picks one up. Each must say `"reference": true` and name
in `reference_for` a backend built alongside it; the build fails otherwise.
"""
import json
import pathlib
import subprocess
import sys

REFERENCE_FIELDS = ("name", "model", "category", "reference_for")


def describe(binary: str) -> dict:
    path = pathlib.Path(binary).resolve()
    described = subprocess.run([str(path), "--describe"], check=True,
                               capture_output=True, text=True, timeout=30)
    entry = json.loads(described.stdout)
    entry["binary"] = str(path)
    return entry


def check_reference(entry: dict, backend_names: set[str]) -> None:
    missing = [f for f in REFERENCE_FIELDS if not entry.get(f)]
    if missing or entry.get("reference") is not True:
        raise SystemExit(f"gen_registry: {entry['binary']} --describe lacks {missing or ['reference: true']}")
    if entry["reference_for"] not in backend_names:
        raise SystemExit(f"gen_registry: {entry['name']} is the reference for "
                         f"'{entry['reference_for']}', which is not a built backend")


def main(argv: list[str]) -> int:
    output, rest = pathlib.Path(argv[1]), argv[2:]
    split = rest.index("--references") if "--references" in rest else len(rest)
    backends = sorted((describe(b) for b in rest[:split]), key=lambda e: e["name"])
    references = sorted((describe(b) for b in rest[split + 1:]), key=lambda e: e["name"])
    names = {b["name"] for b in backends}
    for entry in references:
        check_reference(entry, names)
    output.write_text(json.dumps({"backends": backends, "references": references}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
