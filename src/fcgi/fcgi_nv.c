/*
 * Name-value pairs (spec §3.4): each length is one byte when below 128,
 * otherwise four bytes big-endian with the high bit set as a form flag.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "fcgi/fcgi.h"

#define NV_LEN_MAX 0x7fffffffu

/*
 * Reads one length at buf[*off].  Returns 1 when read, 0 when buf ends first.
 * The four-byte form masks the flag bit, so the result is at most 2^31-1.
 */
static int nv_len(const uint8_t *buf, size_t len, size_t *off, uint32_t *out)
{
	const uint8_t *b = buf + *off;

	if (*off >= len)
		return 0;
	if (!(b[0] & 0x80)) {
		*out = b[0];
		*off += 1;
		return 1;
	}
	if (len - *off < 4)
		return 0;
	*out = ((uint32_t)(b[0] & 0x7f) << 24) | ((uint32_t)b[1] << 16) |
	       ((uint32_t)b[2] << 8) | b[3];
	*off += 4;
	return 1;
}

/*
 * Lengths are compared with what is left of buf one at a time, so the sum of
 * two 31-bit lengths never has to fit in a (possibly 32-bit) size_t.  A pair
 * whose total cannot be represented in ssize_t can never be complete: -1.
 */
ssize_t fcgi_nv_decode(const uint8_t *buf, size_t len,
		       const uint8_t **name, uint32_t *name_len,
		       const uint8_t **value, uint32_t *value_len)
{
	size_t off = 0, left;
	uint32_t nl, vl;

	if (!nv_len(buf, len, &off, &nl) || !nv_len(buf, len, &off, &vl))
		return 0;
	if ((uint64_t)off + nl + vl > (uint64_t)SSIZE_MAX)
		return -1;
	left = len - off;
	if (nl > left || vl > left - nl)
		return 0;
	*name = buf + off;
	*name_len = nl;
	*value = buf + off + nl;
	*value_len = vl;
	return (ssize_t)(off + nl + vl);
}

/* Saturates at SIZE_MAX, which no buffer can hold. */
size_t fcgi_nv_size(size_t name_len, size_t value_len)
{
	size_t hl = (name_len < 128 ? 1 : 4) + (value_len < 128 ? 1 : 4);

	if (name_len > SIZE_MAX - hl || value_len > SIZE_MAX - hl - name_len)
		return SIZE_MAX;
	return hl + name_len + value_len;
}

static size_t put_len(uint8_t *out, size_t n)
{
	if (n < 128) {
		out[0] = (uint8_t)n;
		return 1;
	}
	out[0] = (uint8_t)((n >> 24) | 0x80);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	return 4;
}

size_t fcgi_nv_encode(uint8_t *out, size_t cap, const void *name, size_t name_len,
		      const void *value, size_t value_len)
{
	size_t need = fcgi_nv_size(name_len, value_len), off;

	if (name_len > NV_LEN_MAX || value_len > NV_LEN_MAX || need == SIZE_MAX ||
	    need > cap)
		return 0;
	off = put_len(out, name_len);
	off += put_len(out + off, value_len);
	if (name_len)
		memcpy(out + off, name, name_len);
	off += name_len;
	if (value_len)
		memcpy(out + off, value, value_len);
	return off + value_len;
}
