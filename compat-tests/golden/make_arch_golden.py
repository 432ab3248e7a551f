#!/usr/bin/env python3
"""Writes the golden files of the architecture-specific tables (format 3.1).

Offsets are typed in from DESIGN.md / SPEC.md section 17, not taken from the
Rust code. Refuses to overwrite a file whose bytes differ: golden files are
never edited once committed.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def ex(insn, fixup):
    # 0 insn rel32, 4 fixup rel32
    return struct.pack("<ii", insn, fixup)


def alt(orig, repl, feature, orig_len, repl_len):
    # 0 orig rel32, 4 repl rel32, 8 feature u16, 10 orig_len u8, 11 repl_len u8
    return struct.pack("<iiHBB", orig, repl, feature, orig_len, repl_len)


def bug(loc, msg, line, kind):
    # 0 loc rel32, 4 msg rel32, 8 line u32, 12 kind u16, 14 reserved u16
    return struct.pack("<iiIHH", loc, msg, line, kind, 0)


def note(major, minor, rv, rsize, incompat, compat):
    return struct.pack("<HHHHII8s", major, minor, rv, rsize, incompat, compat, b"\0" * 8)


FILES = {
    "arch/ex_table.bin": ex(-0x100, 0x200) + ex(-0x108 + 8, -4),
    "arch/altinstructions.bin": alt(-0x40, 0x1000, 1, 7, 5)
    + alt(-0x4c, 0x0ff4, 0x8001, 5, 5)
    + alt(0, 4, 0x7fff, 0, 0),
    "arch/bug_frames.bin": bug(-0x300, 0x2000, 42, 1) + bug(-0x310, 0x1ff0, 0xFFFFFFFF, 0),
    "note/v3.1-arch.bin": note(3, 1, 3, 128, 0x10, 0),
}

for rel, data in FILES.items():
    path = os.path.join(HERE, rel)
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() != data:
                sys.exit(f"{rel}: exists with other bytes; golden files are never edited")
        continue
    with open(path, "wb") as f:
        f.write(data)
    print("wrote", rel, len(data))
