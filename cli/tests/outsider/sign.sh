#!/bin/sh
# sign.sh KEY.pem IN OUT: appends DESIGN.md's signature block to a payload
# with openssl alone (an outside signer, not `xsplice sign`):
#   OUT = IN || sig[64] || key_id[8] || footer[16]
#   footer = block_len u32 72, algorithm u16 1 (Ed25519), version u16 1, "XSPLSIG\0"
set -e
key=$1 in=$2 out=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl pkeyutl -sign -rawin -inkey "$key" -in "$in" -out "$tmp/sig"
openssl pkey -in "$key" -pubout -outform DER | tail -c 32 > "$tmp/raw"
openssl dgst -sha256 -binary "$tmp/raw" | head -c 8 > "$tmp/key_id"
cat "$in" "$tmp/sig" "$tmp/key_id" > "$tmp/out"
printf 'H\000\000\000\001\000\001\000XSPLSIG\000' >> "$tmp/out"
mv "$tmp/out" "$out"
