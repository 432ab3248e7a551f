#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with the seed inputs the repository ships:
# gcc-built payloads, the example image, and the golden byte files.
# Idempotent; the corpus directory is not committed (libFuzzer grows it).
set -euo pipefail
cd "$(dirname "$0")"
root=..
seed() { # target file...
  local t=$1; shift
  mkdir -p "corpus/$t"
  local f
  for f in "$@"; do cp -f "$f" "corpus/$t/$(basename "$(dirname "$f")")-$(basename "$f")"; done
}
payloads=("$root"/compat-tests/fixtures/*.o "$root"/examples/hypervisor/*.o)
malformed=()
if compgen -G "$root/compat-tests/malformed/*.bin" >/dev/null; then
  malformed=("$root"/compat-tests/malformed/*.bin)
fi
seed load_dry "${payloads[@]}" "${malformed[@]}"
seed rewrite "${payloads[@]}" "${malformed[@]}"
seed engine_check "$root"/examples/hypervisor/*.o "$root"/compat-tests/fixtures/*.o
seed image "$root"/examples/hypervisor/hv
seed note "$root"/compat-tests/golden/note/*.bin
seed vendor "$root"/compat-tests/golden/vendor/*.bin
seed ledger "$root"/compat-tests/golden/ledger/*.bin
seed signature "$root"/compat-tests/golden/signature/*.bin
# records: one selector byte (sh_entsize 0, as gcc writes) before each section.
mkdir -p corpus/records
for f in "$root"/compat-tests/golden/v[123]/*.bin; do
  { printf '\0'; cat "$f"; } >"corpus/records/$(basename "$(dirname "$f")")-$(basename "$f")"
done
# structured: one byte picks the fixture, no edits yet.
mkdir -p corpus/structured
for i in $(seq 0 19); do printf "\\x$(printf %02x "$i")" >"corpus/structured/fixture-$i"; done
