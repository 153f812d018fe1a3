/*
 * SHA-256 (FIPS 180-4), for the Content-Security-Policy hashes of the live
 * status page's inline script and style (CSP Level 2, "hash-source").  Pure.
 */
#ifndef FPMD_SHA256_H
#define FPMD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
/* "sha256-" and the base64 of the digest, as CSP's hash-source wants it; out needs 52 bytes. */
void sha256_csp_source(const void *data, size_t len, char out[52]);

#endif
