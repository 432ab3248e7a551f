#!/usr/bin/env python3
"""Writes the ledger's golden files from hand-typed offsets (spec/SPEC.md, section 16).

Independent of the Rust code on purpose: a layout slip in xsplice-abi or the
loader's codec fails compat-tests/tests/ledger.rs. Run once; the outputs are
committed and never edited (a layout change is a new ledger version with new
files).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = b"XSPLEDG\0"


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def entry():
    name = b"fix_sum.o"
    ident = b"fix_sum" + b"\x01" * 13             # 20-byte GNU build-id
    depends = bytes.fromhex("b1b24e0136401115e7741104b0b9aae7b8ed0ee1")
    var = pad8(name + ident + depends)
    # regions: text 0x402000+88 filled with 0xcc; rodata 0x414000+5 bytes kept
    r1 = struct.pack("<QQBBB5x", 0x402000, 88, 0, 1, 0xCC)
    r2 = struct.pack("<QQBBB5x", 0x414000, 5, 1, 2, 0) + pad8(b"\x01\x02\x03\x04\x05")
    # one site: hv_sum at 0x401132, record 0, 5 bytes
    s1 = struct.pack("<QIBxH8x", 0x401132, 0, 5, 6) + pad8(
        bytes.fromhex("4155415455") + bytes.fromhex("e9c90e0000") + b"hv_sum")
    # one export, one prerevert hook (point 4)
    x1 = struct.pack("<QQH6x", 0x402000, 88, 10) + pad8(b"fix_hv_sum")
    h1 = struct.pack("<QIB3x", 0x402058, 0, 4)
    body = var + r1 + r2 + s1 + x1 + h1
    size = 64 + len(body)
    head = struct.pack(
        "<IHHHHBBBxHHIII32x",
        size,        # 0 entry_size
        64,          # 4 header_size
        3,           # 6 record_version
        3, 0,        # 8 format_major, 10 format_minor
        1, 20, 20,   # 12 id_kind (build-id), 13 id_len, 14 depends_len; 15 reserved0
        9,           # 16 name_len
        2,           # 18 region_count
        1, 1, 1,     # 20 site_count, 24 export_count, 28 hook_count; 32 reserved1[32]
    )
    assert len(head) == 64
    return head + body


def ledger(entries):
    body = b"".join(entries)
    return struct.pack("<8sHHII12x", MAGIC, 1, 32, len(entries), 32 + len(body)) + body


def write(rel, data):
    path = os.path.join(HERE, rel)
    with open(path, "wb") as f:
        f.write(data)
    print(f"{rel}: {len(data)} bytes")


one = ledger([entry()])
write("ledger/empty.bin", ledger([]))
write("ledger/one-entry.bin", one)
# A trailer as an image carries it: some bytes, the ledger, the 16-byte footer.
write("ledger/trailer.bin", b"\x7fELF-body" + one + struct.pack("<IHH8s", len(one), 1, 0, MAGIC))
