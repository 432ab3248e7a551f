#!/usr/bin/env bash
# Build the offline-patching example: the image hv and its fix payloads.
#
#   build.sh           build hv, fix.o, fix_v1.o, fix_sum.o, fix_version.o here,
#                      check them, run ./hv
#   build.sh --check   build into a temporary directory and cmp against the
#                      committed files; exit non-zero on any
#                      difference
#
# Runs from any cwd. Byte-identical output needs the toolchain that built the
# committed files: gcc (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld 2.40, and
# Debian 12's crt files / libc_nonshared.a (they are linked into hv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

mode=build
case "${1:-}" in
"") ;;
--check) mode=check ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

CC_VERSION="gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
got="$(gcc --version | head -n1)"
if [[ $got != "$CC_VERSION" ]]; then
	echo "build.sh: warning: '$got' is not '$CC_VERSION'; outputs will differ" >&2
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
if [[ $mode == check ]]; then
	OUT="$TMP/out"
	mkdir "$OUT"
else
	OUT="$HERE"
fi
PATCHED="$TMP/patched"
mkdir "$PATCHED"

COMMON=("-ffile-prefix-map=$PWD=." -fno-stack-protector)
run() {
	echo "  $*" | sed "s|$OUT/||g"
	"$@"
}

# The image: non-PIE at 0x400000, sha1 build-id, symbol table kept.
run gcc -O1 -fno-pie -no-pie -Wl,--build-id=sha1 "${COMMON[@]}" hv.c -o "$OUT/hv"
# The payloads: relocatable, -fno-pic (what a hypervisor is built with).
run gcc -O2 -fno-pic "${COMMON[@]}" -c fix.c -o "$OUT/fix.o"
run gcc -O2 -fno-pic "${COMMON[@]}" -c fix_v1.c -o "$OUT/fix_v1.o"
# A stack of two: fix_version.o depends on fix_sum.o's build-id.
run gcc -O2 -fno-pic "${COMMON[@]}" -c fix_sum.c -o "$OUT/fix_sum.o"
run gcc -O2 -fno-pic "${COMMON[@]}" -c fix_version.c -o "$OUT/fix_version.o"

python3 "$HERE/check.py" "$OUT"

want="hv: version 1, sum = 6 (expected 10), fix none: BUG"
out="$("$OUT/hv")" && rc=0 || rc=$?
echo "  ./hv -> $out (exit $rc)"
if [[ $out != "$want" || $rc != 1 ]]; then
	echo "build.sh: unpatched hv should print '$want' and exit 1" >&2
	exit 1
fi

# End to end: patch a copy of hv with the reference oracle and run it.
for v in v3:fix.o v1:fix_v1.o; do
	python3 "$HERE/ref_patch.py" "$OUT/hv" "$OUT/${v#*:}" "$PATCHED/hv-${v%%:*}" >/dev/null
	want="hv: version 2, sum = 10 (expected 10), fix hv-fix-1/${v%%:*}: OK"
	out="$("$PATCHED/hv-${v%%:*}")" && rc=0 || rc=$?
	echo "  ref_patch.py hv ${v#*:} && ./hv -> $out (exit $rc)"
	if [[ $out != "$want" || $rc != 0 ]]; then
		echo "build.sh: hv patched with ${v#*:} should print '$want' and exit 0" >&2
		exit 1
	fi
done

if [[ $mode == check ]]; then
	status=0
	for f in hv fix.o fix_v1.o fix_sum.o fix_version.o; do
		cmp "$OUT/$f" "$HERE/$f" || status=1
	done
	[[ $status == 0 ]] && echo "build.sh --check: hv, fix.o, fix_v1.o, fix_sum.o, fix_version.o identical"
	exit $status
fi
