#!/usr/bin/env python3
"""Writes the golden byte files of the xsplice ABI, independently of the Rust code.

Offsets and sizes are typed in by hand from the wire format (DESIGN.md / spec/SPEC.md),
so a layout slip in `xsplice-abi` fails the compat suite instead of being copied here.

Golden files are never edited once committed: this script refuses to overwrite a file
whose bytes differ. A new layout gets new files.
"""
import os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))

def prefix(new_addr, new_size, old_addr, old_size, name):
    return struct.pack("<QQQQQ", new_addr, new_size, old_addr, old_size, name)

def v1(new_addr, new_size, old_addr, old_size, name, pad=24):
    return prefix(new_addr, new_size, old_addr, old_size, name) + bytes(pad)

def v2(new_addr, new_size, old_addr, old_size, name, incompat=0, compat=0):
    return (prefix(new_addr, new_size, old_addr, old_size, name)
            + struct.pack("<HHII", 2, 64, incompat, compat) + bytes(12))

def v3(new_addr, new_size, old_addr, old_size, name, incompat=0, compat=0,
       patch_offset=0, sympos=0, expect=b""):
    assert len(expect) <= 32
    return (prefix(new_addr, new_size, old_addr, old_size, name)
            + struct.pack("<HHIIIIB", 3, 128, incompat, compat, patch_offset, sympos, len(expect))
            + bytes(3) + expect.ljust(32, b"\0") + bytes(32))

def note(major, minor, rv, rsize, incompat, compat):
    return struct.pack("<HHHHII", major, minor, rv, rsize, incompat, compat) + bytes(8)

def vendor(vid, kind, flags, record, data):
    e = struct.pack("<IHHII", vid, kind, flags, record, len(data)) + data
    return e + bytes(-len(e) % 8)

NOP, PATCH_OFFSET, SYMPOS, EXPECT = 1, 2, 4, 8
HV_TEXT = 0xffff82d080200000
PL_TEXT = 0xffff82d0c0000000
PL_STR = 0xffff82d0c0010000

FILES = {
    "v1/basic.bin": v1(PL_TEXT, 0x30, HV_TEXT + 0x1000, 0x40, PL_STR),
    "v1/two-records.bin": v1(PL_TEXT, 0x30, 0, 0x40, PL_STR)
                          + v1(PL_TEXT + 0x40, 0x18, HV_TEXT + 0x2000, 0x20, PL_STR + 0x10),
    "v1/draft-pad64.bin": v1(PL_TEXT, 0x30, HV_TEXT + 0x1000, 0x40, PL_STR, pad=64),
    "v2/basic.bin": v2(PL_TEXT, 0x30, HV_TEXT + 0x1000, 0x40, PL_STR),
    "v2/nop.bin": v2(0, 5, HV_TEXT + 0x3000, 0x10, PL_STR + 0x20, incompat=NOP),
    "v2/two-records.bin": v2(PL_TEXT, 0x30, 0, 0x40, PL_STR)
                          + v2(0, 8, HV_TEXT + 0x2000, 0x20, PL_STR + 0x10, incompat=NOP),
    "v3/basic.bin": v3(PL_TEXT, 0x30, HV_TEXT + 0x1000, 0x40, PL_STR),
    "v3/all-features.bin": v3(PL_TEXT + 0x80, 0x60, 0, 0x90, PL_STR + 0x30,
                              incompat=PATCH_OFFSET | SYMPOS | EXPECT, patch_offset=4, sympos=2,
                              expect=bytes([0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5])),
    "v3/nop.bin": v3(0, 6, HV_TEXT + 0x3000, 0x10, PL_STR + 0x20, incompat=NOP | PATCH_OFFSET,
                     patch_offset=4),
    "v3/expect-32.bin": v3(PL_TEXT, 0x30, HV_TEXT, 0x40, PL_STR, incompat=EXPECT,
                           expect=bytes(range(0x80, 0xa0))),
    "note/v2.bin": note(2, 0, 2, 64, NOP, 0),
    "note/v3.bin": note(3, 0, 3, 128, PATCH_OFFSET | SYMPOS | EXPECT, 0),
    "vendor/two-entries.bin": vendor(0x80000001, 1, 0, 0, b"abc")
                              + vendor(0x80000002, 7, 1, 0xFFFFFFFF, bytes(range(1, 9))),
}

def main():
    changed = 0
    for rel, data in FILES.items():
        path = os.path.join(HERE, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            with open(path, "rb") as f:
                if f.read() != data:
                    print(f"refusing to change committed golden file {rel}", file=sys.stderr)
                    changed += 1
            continue
        with open(path, "wb") as f:
            f.write(data)
        print(f"wrote {rel} ({len(data)} bytes)")
    sys.exit(1 if changed else 0)

if __name__ == "__main__":
    main()
