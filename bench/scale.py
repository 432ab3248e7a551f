#!/usr/bin/env python3
"""Scale benchmark for xsplice (issue 12): linear work, side by side with the linkers.

For each N it generates, with gcc, an image of N functions `old_i` and N data
symbols `g_i` (2N symbols, arenas big enough) and a v3 payload of N records
replacing each `old_i` with `new_i` (which reads the image's `g_i`: a PC32
relocation, plus the records' new_addr and name ABS64 relocations and the
.eh_frame PC32 ones). It then times, in one run, best of --repeat:

  floor:  cat payload image > /dev/null   (reading the inputs)
  floor:  cp image out                    (what apply must at least do)
  xsplice check PAYLOAD --image IMAGE
  xsplice apply --image IMAGE -o OUT PAYLOAD
  ld.bfd  / ld.gold: link the same payload at a fixed address against the
          same symbol definitions (the image's symbols, from nm, as a linker
          script of assignments)

and prints a Markdown table (time per record and ratios). Usage:

  python3 bench/scale.py [--sizes 100,1000,6000,20000,50000] [--repeat 5]
                         [--xsplice target/release/xsplice] [--keep DIR]
  python3 bench/scale.py --generate N --out DIR   (inputs only: DIR/image, DIR/payload.o)

Needs gcc, binutils (ld.bfd, ld.gold) and python3; run from the repository root.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HEADER = os.path.join(ROOT, "compat-tests", "fixtures", "xsplice_fixture.h")


def generate(n, out):
    """Writes and builds DIR/image and DIR/payload.o for N records."""
    os.makedirs(out, exist_ok=True)
    text_arena = max(65536, (n * 48 + 4095) // 4096 * 4096)
    ro_arena = max(65536, (n * 256 + 4095) // 4096 * 4096)
    with open(os.path.join(out, "image.c"), "w") as f:
        f.write("#include <stdio.h>\n")
        for sec, flags, sym, size, fill in [
            (".xsplice.arena.text", "ax", "xsplice_arena_text", text_arena, 0xCC),
            (".xsplice.arena.rodata", "a", "xsplice_arena_rodata", ro_arena, 0),
            (".xsplice.arena.data", "aw", "xsplice_arena_data", 4096, 0),
        ]:
            f.write(
                f'asm(".pushsection {sec},\\"{flags}\\",@progbits\\n.balign 4096\\n'
                f'.globl {sym}\\n.type {sym}, @object\\n{sym}:\\n.fill {size}, 1, {fill}\\n'
                f'.size {sym}, {size}\\n.popsection\\n");\n'
            )
        for i in range(n):
            f.write(f"long g_{i} = {i};\n")
            f.write(f"__attribute__((noipa, used)) long old_{i}(long x) {{ return x + g_{i}; }}\n")
        f.write("int main(void) { printf(\"%ld\\n\", old_0(1)); return 0; }\n")
    with open(os.path.join(out, "payload.c"), "w") as f:
        f.write(f'#include "{HEADER}"\n')
        for i in range(n):
            f.write(f"extern long g_{i};\n")
            f.write(f"__attribute__((noinline)) long new_{i}(long x) {{ return x - g_{i}; }}\n")
        f.write("static struct xsplice_patch_func_v3 xsplice_funcs[] XSPLICE_FUNCS = {\n")
        for i in range(n):
            f.write(
                f'\t{{ .new_addr = XSPLICE_ADDR(new_{i}), .new_size = 16, .old_size = 5, '
                f'.name = "old_{i}", .version = XSPLICE_VERSION_V3, .size = XSPLICE_SIZE_V3 }},\n'
            )
        f.write("};\n")
        f.write("XSPLICE_ABI_NOTE(3, 0, XSPLICE_VERSION_V3, XSPLICE_SIZE_V3, 0, 0);\n")
    subprocess.run(
        ["gcc", "-O1", "-fno-pie", "-no-pie", "-fno-stack-protector", "-Wl,--build-id=sha1",
         os.path.join(out, "image.c"), "-o", os.path.join(out, "image")],
        check=True,
    )
    subprocess.run(
        ["gcc", "-O2", "-fno-pic", "-fno-stack-protector", "-c",
         os.path.join(out, "payload.c"), "-o", os.path.join(out, "payload.o")],
        check=True,
    )


def best(cmd, repeat, shell=False):
    """Best and median wall time of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"failed: {cmd}: {r.stderr.decode(errors='replace')}")
    return min(times), statistics.median(times)


def fmt(s):
    return f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} µs"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,6000,20000,50000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--xsplice", default=os.path.join(ROOT, "target", "release", "xsplice"))
    ap.add_argument("--keep", help="keep generated inputs under this directory")
    ap.add_argument("--generate", type=int, help="only generate inputs for this N into --out")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.generate:
        generate(a.generate, a.out or ".")
        return
    work = a.keep or tempfile.mkdtemp(prefix="xsplice-scale-")
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        d = os.path.join(work, str(n))
        t = time.perf_counter()
        generate(n, d)
        gen = time.perf_counter() - t
        img, pl, out = (os.path.join(d, x) for x in ("image", "payload.o", "out"))
        r = {"n": n, "gen": gen, "image_mb": os.path.getsize(img) / 2**20}
        r["read"] = best(f"cat {pl} {img} > /dev/null", a.repeat, shell=True)
        r["cp"] = best(["cp", img, out], a.repeat)
        r["check"] = best([a.xsplice, "-q", "check", pl, "--image", img, "--max-size", str(1 << 30)], a.repeat)
        r["apply"] = best([a.xsplice, "-q", "apply", "--image", img, "-o", out, pl, "--max-size", str(1 << 30)], a.repeat)
        # The image's symbols as an implicit linker script of assignments:
        # what both linkers resolve against (gold refuses --just-symbols on
        # an executable with relocation sections).
        defs = os.path.join(d, "defs.ld")
        nm = subprocess.run(["nm", "--defined-only", img], check=True, capture_output=True, text=True)
        with open(defs, "w") as f:
            for line in nm.stdout.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in "TtDdBbRr" and not parts[2].startswith("_"):
                    f.write(f"{parts[2]} = 0x{parts[0]};\n")
        for ld in ("ld.bfd", "ld.gold"):
            r[ld] = best([ld, "-o", out + ".ld", "-Ttext=0x10000000", "-e", "0", pl, defs], a.repeat)
        rows.append(r)
        print(f"N={n}: generated in {gen:.1f} s, image {r['image_mb']:.1f} MiB", file=sys.stderr)
    print("| N | image | read inputs | cp image | `check --image` | `apply` | ld.bfd | ld.gold "
          "| check per record | ld.bfd / check | ld.gold / check | apply / cp |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c, ap_, bfd, gold, cp = r["check"][0], r["apply"][0], r["ld.bfd"][0], r["ld.gold"][0], r["cp"][0]
        print(f"| {r['n']} | {r['image_mb']:.1f} MiB | {fmt(r['read'][0])} | {fmt(cp)} | {fmt(c)} | {fmt(ap_)} "
              f"| {fmt(bfd)} | {fmt(gold)} | {c / r['n'] * 1e6:.2f} µs | {bfd / c:.1f}× | {gold / c:.1f}× "
              f"| {ap_ / cp:.1f}× |")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
