#!/usr/bin/env bash
# Checks the shape of the workspace that no compiler checks:
#   - every member inherits the workspace's rust-version, and that version has let-chains (1.88);
#   - nothing under crates/ depends on anything under apps/ (libraries stay below applications);
#   - every main.rs is at most 15 lines (a server's life is server::main, not copied per app);
#   - no Rust source outside tests is over 500 lines.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo metadata --format-version 1 --no-deps | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
root = meta["workspace_root"]
failures = []
members = {p["name"]: p for p in meta["packages"]}
for p in members.values():
    rel = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
    rv = p.get("rust_version") or ""
    if tuple(int(x) for x in (rv or "0").split(".")[:2]) < (1, 88):
        failures.append(f"{rel}: rust-version {rv or None} (let-chains need 1.88; inherit rust-version.workspace)")
    if rel.startswith("crates/"):
        for dep in p["dependencies"]:
            path = dep.get("path")
            if path and os.path.relpath(path, root).startswith("apps/"):
                failures.append(f"{rel} depends on {os.path.relpath(path, root)}")
for f in failures:
    print("FAIL", f)
print(f"{len(members)} members: rust-version and crates-below-apps checked")
sys.exit(1 if failures else 0)
'

status=0
while IFS= read -r file; do
  [ -f "$file" ] || continue
  lines=$(wc -l < "$file")
  if [ "$lines" -gt 15 ]; then echo "FAIL $file: $lines lines (at most 15)"; status=1; fi
done < <(git ls-files -co --exclude-standard 'apps/*/src/main.rs')

while IFS= read -r file; do
  case "$file" in */tests/*|*/examples/*) continue ;; esac
  [ -f "$file" ] || continue
  lines=$(wc -l < "$file")
  if [ "$lines" -gt 500 ]; then echo "FAIL $file: $lines lines (at most 500)"; status=1; fi
done < <(git ls-files -co --exclude-standard '*.rs')
[ "$status" -eq 0 ] && echo "main.rs files at most 15 lines, sources at most 500 lines"
exit "$status"
