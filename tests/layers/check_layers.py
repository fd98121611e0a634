#!/usr/bin/env python3
"""The daemon's dependency rule, read from the includes.

    cli -> export -> model -> kernel -> abi

A source or header of one layer (daemon/<layer>/, include/migwatch/<layer>/)
may include its own layer's headers and those of the layers below, never
those above; the model and kernel layers include no Prometheus, command line
or terminal library; workload/ (generators of known migrations) includes
nothing of the layers but abi.h.

    check_layers.py REPOSITORY     exit 1 and one line per violation
    check_layers.py --self-test    the check finds a planted violation
"""
import re
import sys
import tempfile
from pathlib import Path

LAYERS = ["abi", "kernel", "model", "export", "cli"]
RANK = {name: rank for rank, name in enumerate(LAYERS)}
# Libraries a layer must not see: <prefix of the include path>.
FORBIDDEN = {
    "kernel": ["prometheus/", "CLI/", "curses.h", "ncurses.h", "systemd/", "civetweb.h"],
    "model": ["prometheus/", "CLI/", "curses.h", "ncurses.h", "systemd/", "civetweb.h", "bpf/"],
    "export": ["CLI/", "curses.h", "ncurses.h"],
    "workload": ["prometheus/", "CLI/", "curses.h", "ncurses.h", "systemd/"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)


def layer_of(path: Path, root: Path) -> str | None:
    parts = path.relative_to(root).parts
    if parts[0] == "daemon" and len(parts) > 2:
        return parts[1]
    if parts[:2] == ("include", "migwatch"):
        return parts[2] if len(parts) > 3 else ("abi" if parts[2] == "abi.h" else None)
    return None


def included_layer(header: str) -> str | None:
    if not header.startswith("migwatch/"):
        return None
    rest = header[len("migwatch/"):]
    return "abi" if rest == "abi.h" else rest.split("/")[0]


def violations(root: Path) -> list[str]:
    found = []
    files = [p for d in ("daemon", "include/migwatch") for p in (root / d).rglob("*")
             if p.suffix in (".h", ".cc", ".in") and p.is_file()]
    for path in sorted(files):
        layer = layer_of(path, root)
        if layer is None:
            continue
        for bracket, header in INCLUDE.findall(path.read_text(errors="replace")):
            where = f"{path.relative_to(root)}: #include {bracket}{header}{'>' if bracket == '<' else bracket}"
            if bracket == "<":
                for prefix in FORBIDDEN.get(layer, []):
                    if header.startswith(prefix):
                        found.append(f"{where}: the {layer} layer does not use {prefix.rstrip('/')}")
                continue
            target = included_layer(header)
            if target is None:
                continue
            if layer == "workload":
                if target not in ("abi", "workload"):
                    found.append(f"{where}: workload/ includes only abi.h and itself")
            elif target == "workload":
                if layer != "cli":
                    found.append(f"{where}: only the commands use workload/")
            elif target not in RANK:
                found.append(f"{where}: {target} is not a layer ({' -> '.join(reversed(LAYERS))})")
            elif layer in RANK and RANK[target] > RANK[layer]:
                found.append(f"{where}: {layer} includes {target}, a layer above it")
    return found


def self_test() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "daemon/model").mkdir(parents=True)
        (root / "include/migwatch/model").mkdir(parents=True)
        (root / "daemon/model/ok.cc").write_text('#include "migwatch/kernel/maps.h"\n#include <map>\n')
        (root / "daemon/model/up.cc").write_text('#include "migwatch/export/metrics.h"\n')
        (root / "include/migwatch/model/lib.h").write_text("#include <prometheus/family.h>\n")
        found = violations(root)
        expected = ["daemon/model/up.cc", "include/migwatch/model/lib.h"]
        ok = len(found) == 2 and all(any(f.startswith(e) for f in found) for e in expected)
        print("\n".join(found))
        print("self-test", "passed" if ok else "FAILED: expected one violation in each of " + ", ".join(expected))
        return 0 if ok else 1


def main(argv: list[str]) -> int:
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    found = violations(Path(argv[0]))
    for line in found:
        print(line)
    print(f"{len(found)} include(s) against the layering" if found else "every include runs downwards")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
