/*
 * FastCGI records: the 8-byte header, the fixed-size BEGIN_REQUEST and
 * END_REQUEST bodies, and the writer that cuts a byte stream into records.
 * Integers are written and read one byte at a time, big-endian (spec §3.3).
 */
#include <stdint.h>
#include <string.h>

#include "fcgi/fcgi.h"

const uint8_t fcgi_zero_pad[8];

void fcgi_header_decode(const uint8_t in[FCGI_HEADER_LEN], struct fcgi_header *h)
{
	h->version = in[0];
	h->type = in[1];
	h->request_id = (uint16_t)((in[2] << 8) | in[3]);
	h->content_length = (uint16_t)((in[4] << 8) | in[5]);
	h->padding_length = in[6];
	/* in[7] is reserved */
}

void fcgi_header_encode(uint8_t out[FCGI_HEADER_LEN], uint8_t type, uint16_t request_id,
			uint16_t content_length, uint8_t padding_length)
{
	out[0] = FCGI_VERSION_1;
	out[1] = type;
	out[2] = (uint8_t)(request_id >> 8);
	out[3] = (uint8_t)request_id;
	out[4] = (uint8_t)(content_length >> 8);
	out[5] = (uint8_t)content_length;
	out[6] = padding_length;
	out[7] = 0;
}

/* FCGI_EndRequestBody (spec §5.5): appStatus, protocolStatus, 3 reserved bytes. */
void fcgi_end_request_encode(uint8_t out[FCGI_END_REQUEST_LEN], uint16_t request_id,
			     uint32_t app_status, uint8_t protocol_status)
{
	fcgi_header_encode(out, FCGI_END_REQUEST, request_id, 8, 0);
	out[8] = (uint8_t)(app_status >> 24);
	out[9] = (uint8_t)(app_status >> 16);
	out[10] = (uint8_t)(app_status >> 8);
	out[11] = (uint8_t)app_status;
	out[12] = protocol_status;
	memset(out + 13, 0, 3);
}

/* FCGI_BeginRequestBody (spec §5.1): role, flags, 5 reserved bytes. */
void fcgi_begin_request_encode(uint8_t out[FCGI_BEGIN_REQUEST_LEN], uint16_t request_id,
			       uint16_t role, uint8_t flags)
{
	fcgi_header_encode(out, FCGI_BEGIN_REQUEST, request_id, 8, 0);
	out[8] = (uint8_t)(role >> 8);
	out[9] = (uint8_t)role;
	out[10] = flags;
	memset(out + 11, 0, 5);
}

size_t fcgi_stream_header(uint8_t out[FCGI_HEADER_LEN], uint8_t type, uint16_t request_id,
			  size_t len, uint8_t *padding)
{
	size_t n = len < FCGI_MAX_CONTENT ? len : FCGI_MAX_CONTENT;

	*padding = fcgi_padding_for(n);
	fcgi_header_encode(out, type, request_id, (uint16_t)n, *padding);
	return n;
}

/*
 * Bytes fcgi_stream_encode() writes for len bytes: full records of 65535
 * bytes (8 + 65535 + 1 padding), then the remainder rounded up to 8 with its
 * header.  Saturates at SIZE_MAX, which no buffer can hold.
 */
size_t fcgi_stream_size(size_t len)
{
	const size_t full = FCGI_HEADER_LEN + FCGI_MAX_CONTENT + 1;
	size_t nfull = len / FCGI_MAX_CONTENT, rest = len % FCGI_MAX_CONTENT;
	size_t tail;

	if (len == 0)
		return FCGI_HEADER_LEN;
	tail = rest ? FCGI_HEADER_LEN + rest + fcgi_padding_for(rest) : 0;
	if (nfull > (SIZE_MAX - tail) / full)
		return SIZE_MAX;
	return nfull * full + tail;
}

/*
 * Only an explicit len == 0 writes the empty record: it ends the stream
 * (spec §3.3), so one must never appear in the middle of the data.
 */
size_t fcgi_stream_encode(uint8_t *out, size_t cap, uint8_t type, uint16_t request_id,
			  const void *data, size_t len)
{
	const uint8_t *src = data;
	size_t need = fcgi_stream_size(len), off = 0;
	uint8_t pad;

	if (need == SIZE_MAX || need > cap)
		return 0;
	do {
		size_t n = fcgi_stream_header(out + off, type, request_id, len, &pad);

		off += FCGI_HEADER_LEN;
		if (n) {
			memcpy(out + off, src, n);
			off += n;
			src += n;       /* only here: src may be NULL for the empty record */
		}
		memset(out + off, 0, pad);
		off += pad;
		len -= n;
	} while (len > 0);
	return off;
}

static const char *const errstr[] = {
	[FCGI_OK]                 = "no error",
	[FCGI_E_VERSION]          = "bad FastCGI version",
	[FCGI_E_BEGIN_BODY]       = "BEGIN_REQUEST body is not 8 bytes",
	[FCGI_E_UNEXPECTED]       = "unexpected record",
	[FCGI_E_NV_MALFORMED]     = "malformed name-value pair",
	[FCGI_E_PARAMS_TOO_LARGE] = "params too large",
	[FCGI_E_PARAMS_TOO_MANY]  = "too many params",
	[FCGI_E_NAME_TOO_LONG]    = "param name too long",
	[FCGI_E_BAD_NAME]         = "bad param name",
	[FCGI_E_NO_MEMORY]        = "out of memory",
	[FCGI_E_MGMT_TOO_LARGE]   = "management record too large",
	[FCGI_E_END_BODY]         = "END_REQUEST body is not 8 bytes",
};

const char *fcgi_strerror(enum fcgi_error err)
{
	if ((unsigned)err >= sizeof(errstr) / sizeof(errstr[0]) || !errstr[err])
		return "unknown FastCGI error";
	return errstr[err];
}
