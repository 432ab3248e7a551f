#!/usr/bin/env bash
# Writes the signature golden files with openssl and printf alone (nothing
# from the Rust code), and refuses to overwrite a file whose bytes differ:
# golden files are never edited once committed.
#
#   footer-ed25519-v1.bin  16 bytes: block_len 72, algorithm 1, version 1, "XSPLSIG\0"
#   signed-rfc8032.bin     S || sig[64] || key_id[8] || footer: S is the 44 ASCII
#                          bytes of message.txt, signed with the key of RFC 8032
#                          section 7.1 TEST 1 (secret 9d61b19d...7f60)
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# PKCS#8 v1 DER of the RFC key: the fixed Ed25519 prefix, then the secret.
printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20' >"$tmp/key.der"
printf '\x9d\x61\xb1\x9d\xef\xfd\x5a\x60\xba\x84\x4a\xf4\x92\xec\x2c\xc4' >>"$tmp/key.der"
printf '\x44\x49\xc5\x69\x7b\x32\x69\x19\x70\x3b\xac\x03\x1c\xae\x7f\x60' >>"$tmp/key.der"
openssl pkey -inform DER -in "$tmp/key.der" -out "$tmp/key.pem"
openssl pkey -in "$tmp/key.pem" -pubout -outform DER | tail -c 32 >"$tmp/pub.raw"

printf 'xsplice signature golden: these are bytes S\n' >"$tmp/S"
openssl pkeyutl -sign -rawin -inkey "$tmp/key.pem" -in "$tmp/S" -out "$tmp/sig"
openssl dgst -sha256 -binary "$tmp/pub.raw" | head -c 8 >"$tmp/key_id"
printf '\x48\x00\x00\x00\x01\x00\x01\x00XSPLSIG\x00' >"$tmp/footer"
cat "$tmp/S" "$tmp/sig" "$tmp/key_id" "$tmp/footer" >"$tmp/signed"

put() {
	if [[ -e $2 ]] && ! cmp -s "$1" "$2"; then
		echo "make.sh: $2 exists with other bytes; golden files are never edited" >&2
		exit 1
	fi
	cp "$1" "$2"
}
put "$tmp/footer" footer-ed25519-v1.bin
put "$tmp/signed" signed-rfc8032.bin
