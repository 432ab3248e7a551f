#!/usr/bin/env python3
"""Minimal offline patcher, a test oracle for the example (NOT the product).

    ref_patch.py IMAGE PAYLOAD.o OUTPUT

Places the payload's SHF_ALLOC sections in IMAGE's xsplice arenas (exec ->
.xsplice.arena.text, writable -> .xsplice.arena.data, the rest ->
.xsplice.arena.rodata), resolves its symbols (its own, then IMAGE's global
symbols), applies its x86-64 relocations (64, PC32, PLT32, 32, 32S, with
overflow checks), decodes .xsplice.funcs (v1, v2 or v3, no incompat features),
checks .xsplice.depends against IMAGE's build-id when present, writes a 5-byte
`jmp rel32` at each resolved old function and writes OUTPUT.

It does only what examples/hypervisor needs, to prove the example patches
correctly end to end; the Rust loader (loader/, cli/) is the real thing and
should produce an image that behaves the same.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep __pycache__ out of compat-tests/fixtures
sys.path.insert(0, os.path.join(HERE, "..", "..", "compat-tests", "fixtures"))
import verify  # noqa: E402

SHF_WRITE, SHF_ALLOC, SHF_EXEC = 1, 2, 4
SHN_UNDEF, SHN_ABS = 0, 0xFFF1


def fail(msg):
    sys.exit(f"ref_patch.py: {msg}")


def main(image_path, payload_path, out_path):
    img = verify.Elf(image_path, want_type=2)
    pay = verify.Elf(payload_path)
    out = bytearray(img.b)

    def file_off(vaddr, n):
        for s in img.sh:
            if s["type"] == 1 and s["addr"] <= vaddr and vaddr + n <= s["addr"] + s["size"]:
                return s["off"] + vaddr - s["addr"]
        fail(f"{vaddr:#x} is not file-backed in the image")

    # Lay out the payload's allocated sections in the arenas.
    cursor = {}
    for n in (".xsplice.arena.text", ".xsplice.arena.rodata", ".xsplice.arena.data"):
        _, s = img.sec(n)
        if s is None:
            fail(f"image has no {n}")
        cursor[n] = [s["addr"], s["addr"] + s["size"]]
    addr = {}
    for i, s in enumerate(pay.sh):
        if not s["flags"] & SHF_ALLOC:
            continue
        arena = (".xsplice.arena.text" if s["flags"] & SHF_EXEC else
                 ".xsplice.arena.data" if s["flags"] & SHF_WRITE else
                 ".xsplice.arena.rodata")
        cur = cursor[arena]
        a = (cur[0] + max(s["align"], 1) - 1) & -max(s["align"], 1)
        if a + s["size"] > cur[1]:
            fail(f"{s['name']} does not fit in {arena}")
        addr[i] = a
        cur[0] = a + s["size"]
        if s["type"] != 8:  # NOBITS stays zero (the data arena is zero-filled)
            o = file_off(a, s["size"])
            out[o:o + s["size"]] = pay.data(s)

    img_syms = {s["name"]: s["value"] for s in img.syms
                if s["bind"] in (1, 2) and s["shndx"] != SHN_UNDEF}

    def sym_value(sym):
        if sym["shndx"] == SHN_UNDEF:
            if sym["name"] not in img_syms:
                fail(f"undefined symbol {sym['name']} not in the image")
            return img_syms[sym["name"]]
        if sym["shndx"] == SHN_ABS:
            return sym["value"]
        if sym["shndx"] not in addr:
            fail(f"symbol {sym['name']} in a non-allocated section")
        return addr[sym["shndx"]] + sym["value"]

    for i, s in enumerate(pay.sh):
        if i not in addr or pay.sh[i]["type"] == 8:
            continue
        for r in pay.relas(i):
            S, A, P = sym_value(r["sym"]), r["addend"], addr[i] + r["offset"]
            t = r["type"]
            if t == 1:  # R_X86_64_64
                v, fmt = (S + A) & (2**64 - 1), "<Q"
            elif t in (2, 4):  # PC32, PLT32 (the image is static: PLT32 = PC32)
                v, fmt = S + A - P, "<i"
                if not -2**31 <= v < 2**31:
                    fail(f"PC32 overflow at {P:#x}")
            elif t == 10:  # R_X86_64_32
                v, fmt = S + A, "<I"
                if not 0 <= v < 2**32:
                    fail(f"R_X86_64_32 overflow at {P:#x}")
            elif t == 11:  # R_X86_64_32S
                v, fmt = S + A, "<i"
                if not -2**31 <= v < 2**31:
                    fail(f"R_X86_64_32S overflow at {P:#x}")
            else:
                fail(f"relocation type {t} not handled")
            o = file_off(P, struct.calcsize(fmt))
            struct.pack_into(fmt, out, o, v)

    def read(vaddr, n):
        o = file_off(vaddr, n)
        return bytes(out[o:o + n])

    di, _ = pay.sec(".xsplice.depends")
    if di is not None:
        _, bs = img.sec(".note.gnu.build-id")
        if read(addr[di] + 16, 20) != img.data(bs)[16:36]:
            fail(".xsplice.depends does not match the image's build-id")

    fi, fs = pay.sec(".xsplice.funcs")
    recs = read(addr[fi], fs["size"])
    tag = struct.unpack_from("<H", recs, 40)[0]
    size = {0: 64, 2: 64, 3: 128}[tag]
    for k in range(len(recs) // size):
        new_addr, new_size, old_addr, old_size, name_p = struct.unpack_from("<5Q", recs, k * size)
        if tag and struct.unpack_from("<I", recs, k * size + 44)[0]:
            fail("incompat features are not handled by this oracle")
        name = b""
        while not name.endswith(b"\0"):
            name += read(name_p + len(name), 1)
        name = name[:-1].decode()
        if old_addr == 0:
            old_addr = img_syms[name]
        if old_size < 5:
            fail(f"{name}: old_size {old_size} < 5")
        rel = new_addr - (old_addr + 5)
        o = file_off(old_addr, 5)
        out[o:o + 5] = b"\xe9" + struct.pack("<i", rel)
        print(f"ref_patch.py: {name} {old_addr:#x} -> {new_addr:#x} ({new_size} bytes)")

    with open(out_path, "wb") as f:
        f.write(out)
    os.chmod(out_path, 0o755)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
