#!/usr/bin/env python3
"""Check the offline-patching example: check.py DIR (holding hv, fix.o, fix_v1.o).

hv: a non-PIE x86-64 executable with a symbol table, a sha1 build-id and the
three xsplice arena sections, each page-aligned PROGBITS with the right flags,
inside a PT_LOAD of the right permissions and backed by file bytes.

fix.o / fix_v1.o: decoded with compat-tests/fixtures/verify.py; every number
hard-coded in the C (old_size, new_size, the depends build-id) must agree with
the built hv and objects, and every undefined symbol must be defined in hv.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep __pycache__ out of compat-tests/fixtures
sys.path.insert(0, os.path.join(HERE, "..", "..", "compat-tests", "fixtures"))
import verify  # noqa: E402

SHF_W, SHF_A, SHF_X = 1, 2, 4
PF_X, PF_W, PF_R = 1, 2, 4
ARENA = {  # name: (sh_flags, p_flags, size)
    ".xsplice.arena.text": (SHF_A | SHF_X, PF_R | PF_X, 65536),
    ".xsplice.arena.rodata": (SHF_A, PF_R, 16384),
    ".xsplice.arena.data": (SHF_A | SHF_W, PF_R | PF_W, 16384),
}
PATCHED = ("hv_sum", "hv_version")


def check_image(path, errs):
    e = verify.Elf(path, want_type=2)  # ET_EXEC: non-PIE
    if e.e_machine != verify.EM_X86_64:
        errs.append("hv: not x86-64")
    if not any(s["type"] == 2 for s in e.sh):
        errs.append("hv: no .symtab (stripped?)")
    _, bs = e.sec(".note.gnu.build-id")
    nb = e.data(bs)
    if nb[8:16] != b"\x03\0\0\0GNU\0" or nb[4] != 20:
        errs.append("hv: no sha1 GNU build-id note")
    build_id = nb[16:36].hex()
    for name, (shf, pf, size) in ARENA.items():
        _, s = e.sec(name)
        if s is None:
            errs.append(f"hv: no {name}")
            continue
        if (s["type"], s["flags"], s["size"], s["align"]) != (1, shf, size, 4096) \
                or s["addr"] % 4096:
            errs.append(f"hv: {name} type/flags/size/align "
                        f"{s['type']}/{s['flags']:#x}/{s['size']}/{s['align']}")
        segs = [p for p in e.ph if p["type"] == 1 and p["vaddr"] <= s["addr"]
                and s["addr"] + s["size"] <= p["vaddr"] + p["memsz"]]
        if len(segs) != 1:
            errs.append(f"hv: {name} not inside exactly one PT_LOAD")
            continue
        p = segs[0]
        if p["flags"] != pf:
            errs.append(f"hv: {name} in a PT_LOAD with p_flags {p['flags']}, want {pf}")
        if s["addr"] + s["size"] > p["vaddr"] + p["filesz"] or \
                s["off"] - p["off"] != s["addr"] - p["vaddr"]:
            errs.append(f"hv: {name} not backed by file bytes")
    syms = {s["name"]: s for s in e.syms if s["bind"] in (1, 2) and s["shndx"] != 0}
    for f in PATCHED:
        if f not in syms or syms[f]["type"] != 2 or syms[f]["size"] < 16:
            errs.append(f"hv: {f} missing or smaller than 16 bytes")
    return build_id, syms


def check_payload(path, version, build_id, hv_syms, errs):
    name = os.path.basename(path)
    view, perrs = verify.decode(path)
    errs += [f"{name}: {m}" for m in perrs]
    if view.get("record_version") != version:
        errs.append(f"{name}: record version {view.get('record_version')} != {version}")
    want_note = None if version == 1 else dict(format_major=3, format_minor=0,
                                               record_version=3, record_size=128,
                                               incompat=0, compat=0)
    if view.get("note") != want_note:
        errs.append(f"{name}: note {view.get('note')} != {want_note}")
    want_dep = None if version == 1 else dict(name="GNU", type=3, id=build_id)
    if view.get("depends") != want_dep:
        errs.append(f"{name}: depends {view.get('depends')} != hv's build-id {build_id}")
    got = [(r["name"], r["new_function"], r["old_size"], r["old_function"])
           for r in view.get("records", [])]
    want = [(f, "fix_" + f, hv_syms[f]["size"] if f in hv_syms else None, None)
            for f in PATCHED]
    if got != want:
        errs.append(f"{name}: records {got} != {want}")
    e = verify.Elf(path)
    for s in e.syms:
        if s["shndx"] == 0 and s["name"] and s["name"] not in hv_syms:
            errs.append(f"{name}: undefined {s['name']} is not defined in hv")
    return view


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = argv[1]
    errs = []
    build_id, hv_syms = check_image(os.path.join(d, "hv"), errs)
    for obj, version in (("fix.o", 3), ("fix_v1.o", 1)):
        check_payload(os.path.join(d, obj), version, build_id, hv_syms, errs)
    for m in errs:
        print(m, file=sys.stderr)
    print(f"check.py: hv build-id {build_id}, {len(errs)} problems")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
