/*
 * Hand-written from /work/shared/DESIGN.md ("Wire format"), the way a team
 * outside the project would declare the records: NOT the generated
 * spec/xsplice_abi.h.  x86-64 only (pointers are 8 bytes, little-endian).
 */
#ifndef XSPLICE_WIRE_H
#define XSPLICE_WIRE_H
#include <stdint.h>

/* 40-byte prefix shared by every record version. */
#define XSPLICE_PREFIX            \
    void *new_addr;               \
    uint64_t new_size;            \
    void *old_addr;               \
    uint64_t old_size;            \
    const char *name

/* v1, 64 bytes: untagged, pad all zero. */
struct xsplice_patch_func_v1 {
    XSPLICE_PREFIX;
    uint8_t pad[24];
};

/* v2, 64 bytes: tags carved from the padding. */
struct xsplice_patch_func_v2 {
    XSPLICE_PREFIX;
    uint16_t version; /* 2 */
    uint16_t size;    /* 64 */
    uint32_t incompat;
    uint32_t compat;
    uint8_t reserved[12];
};

/* v3, 128 bytes: the padded successor. */
struct xsplice_patch_func_v3 {
    XSPLICE_PREFIX;
    uint16_t version; /* 3 */
    uint16_t size;    /* 128 */
    uint32_t incompat;
    uint32_t compat;
    uint32_t patch_offset;
    uint32_t sympos;
    uint8_t expect_len;
    uint8_t reserved0[3];
    uint8_t expect[32];
    uint8_t reserved1[32];
};

_Static_assert(sizeof(struct xsplice_patch_func_v1) == 64, "v1 size");
_Static_assert(sizeof(struct xsplice_patch_func_v2) == 64, "v2 size");
_Static_assert(sizeof(struct xsplice_patch_func_v3) == 128, "v3 size");

#define XSPLICE_INCOMPAT_NOP (1u << 0)
#define XSPLICE_INCOMPAT_PATCH_OFFSET (1u << 1)
#define XSPLICE_INCOMPAT_SYMPOS (1u << 2)
#define XSPLICE_INCOMPAT_EXPECT (1u << 3)

/* ABI note, section .note.xsplice: name "XSPLICE\0", type 1, 24-byte desc. */
struct xsplice_abi_note {
    uint32_t namesz; /* 8 */
    uint32_t descsz; /* 24 */
    uint32_t type;   /* 1 */
    char name[8];    /* "XSPLICE\0" */
    uint16_t format_major;
    uint16_t format_minor;
    uint16_t record_version;
    uint16_t record_size;
    uint32_t incompat;
    uint32_t compat;
    uint8_t reserved[8];
};
_Static_assert(sizeof(struct xsplice_abi_note) == 44, "note size");

/* namesz counts the NUL: 8 (a test builds 7, the classic slip, to see the refusal). */
#ifndef XSPLICE_NOTE_NAMESZ
#define XSPLICE_NOTE_NAMESZ 8
#endif

#define XSPLICE_NOTE(major, recsize, incompat_bits)                                  \
    __attribute__((section(".note.xsplice"), aligned(4), used))                      \
    static const struct xsplice_abi_note xsplice_note = {                            \
        XSPLICE_NOTE_NAMESZ, 24, 1, "XSPLICE", (major), 0, (major), (recsize),       \
        (incompat_bits), 0, {0},                                                     \
    }

#define XSPLICE_FUNCS __attribute__((section(".xsplice.funcs"), used))

#endif
