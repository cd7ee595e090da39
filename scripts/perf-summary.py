#!/usr/bin/env python3
"""Summarises a system-wide `perf record` of a benchmark run as Markdown, one section a process.

    perf-summary.py PERF_DATA NAME=PID[,PID...] ...

For each named process: its share of all samples (of both cores, idle included), where its time
went by crate (the first path segment of a Rust symbol; `kernel` for kernel code, the library's
name for C code such as libc or SQLite), and its busiest functions by self time.
"""

import collections
import re
import subprocess
import sys

TOP_CRATES = 8
TOP_SYMBOLS = 12


def samples(perf_data):
    """Yields (pid, dso, symbol) for every sample in the recording."""
    out = subprocess.run(
        ["perf", "script", "-i", perf_data, "-F", "pid,ip,sym,dso", "--no-demangle"],
        capture_output=True, text=True, errors="replace", check=True,
    ).stdout
    line_re = re.compile(r"^\s*(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
    for line in out.splitlines():
        m = line_re.match(line)
        if m:
            yield int(m.group(1)), m.group(3), m.group(2)


def demangle(symbols):
    """Demangles Rust and C++ names in one call to c++filt (perf's own is slow per sample)."""
    unique = sorted(set(symbols))
    if not unique:
        return {}
    out = subprocess.run(["c++filt"], input="\n".join(unique), capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return dict(zip(unique, out))


# Legacy mangling's trailing `::h<hash>` and v0 mangling's `crate[<hash>]` say nothing to a reader.
HASH_RE = re.compile(r"::h[0-9a-f]{16}$|\[[0-9a-f]{16}\]")


# Our binaries: their symbols are Rust paths, named by crate; any other file is a library.
NAMES_OF_OURS = ["order-gateway", "payment-service", "email-service", "log-service",
                 "otlp-sink", "tracehop"]


def crate_of(symbol, dso):
    """The crate (or library) a function belongs to."""
    if dso.startswith("[kernel"):
        return "kernel"
    if "/" in dso and not dso.endswith(tuple(NAMES_OF_OURS)):
        name = dso.rsplit("/", 1)[-1]
        return name.split(".so")[0]
    name = symbol.lstrip("<&*").removeprefix("mut ").removeprefix("dyn ")
    if "::" in name:
        return name.split("::", 1)[0]
    return "(other)" if symbol == "[unknown]" else "std/C"


def main():
    perf_data, specs = sys.argv[1], sys.argv[2:]
    processes = {}
    for spec in specs:
        name, pids = spec.split("=", 1)
        for pid in filter(None, pids.split(",")):
            processes[int(pid)] = name
    rows = list(samples(perf_data))
    total = len(rows)
    names = demangle(sym for _, _, sym in rows)
    by_process = collections.defaultdict(list)
    for pid, dso, sym in rows:
        if pid in processes:
            by_process[processes[pid]].append((dso, HASH_RE.sub("", names.get(sym, sym))))
    print(f"{total} samples over both cores (idle included).\n")
    print("| process | share of both cores' samples |")
    print("|---|---:|")
    for name in dict.fromkeys(processes.values()):
        print(f"| {name} | {100 * len(by_process[name]) / max(total, 1):.1f}% |")
    for name in dict.fromkeys(processes.values()):
        rows = by_process[name]
        if not rows:
            continue
        print(f"\n### {name}\n")
        crates = collections.Counter(crate_of(sym, dso) for dso, sym in rows)
        print("By crate or library: " + ", ".join(
            f"{crate} {100 * n / len(rows):.0f}%" for crate, n in crates.most_common(TOP_CRATES)))
        print("\n| self | function |\n|---:|---|")
        for sym, n in collections.Counter(sym for _, sym in rows).most_common(TOP_SYMBOLS):
            print(f"| {100 * n / len(rows):.1f}% | `{sym[:150]}` |")


if __name__ == "__main__":
    main()
