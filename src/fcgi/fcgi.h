/*
 * FastCGI 1.0 codec: records, name-value pairs, an incremental server-side
 * request parser, a response writer and a client-side response reader.
 *
 * Pure code: no I/O, no logging, no globals.  Every length read from the
 * wire is checked before use; a malformed peer produces an error value for
 * its own connection, never a crash or an unbounded allocation.
 *
 * Integers are encoded and decoded byte by byte (big-endian, spec §3.3);
 * no packed structs are overlaid on wire bytes.
 */
#ifndef FPMD_FCGI_H
#define FPMD_FCGI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FCGI_VERSION_1        1
#define FCGI_HEADER_LEN       8
#define FCGI_MAX_CONTENT      65535
#define FCGI_NULL_REQUEST_ID  0

enum fcgi_type {
	FCGI_BEGIN_REQUEST     = 1,
	FCGI_ABORT_REQUEST     = 2,
	FCGI_END_REQUEST       = 3,
	FCGI_PARAMS            = 4,
	FCGI_STDIN             = 5,
	FCGI_STDOUT            = 6,
	FCGI_STDERR            = 7,
	FCGI_DATA              = 8,
	FCGI_GET_VALUES        = 9,
	FCGI_GET_VALUES_RESULT = 10,
	FCGI_UNKNOWN_TYPE      = 11,
};

enum fcgi_role {
	FCGI_RESPONDER  = 1,
	FCGI_AUTHORIZER = 2,
	FCGI_FILTER     = 3,
};

enum fcgi_protocol_status {
	FCGI_REQUEST_COMPLETE = 0,
	FCGI_CANT_MPX_CONN    = 1,
	FCGI_OVERLOADED       = 2,
	FCGI_UNKNOWN_ROLE     = 3,
};

#define FCGI_KEEP_CONN 1

/* ---- records ---------------------------------------------------------- */

struct fcgi_header {
	uint8_t  version;
	uint8_t  type;
	uint16_t request_id;
	uint16_t content_length;
	uint8_t  padding_length;
};

/* Decodes 8 bytes.  Does not judge the values (see the parser for that). */
void fcgi_header_decode(const uint8_t in[FCGI_HEADER_LEN], struct fcgi_header *h);
void fcgi_header_encode(uint8_t out[FCGI_HEADER_LEN], uint8_t type, uint16_t request_id,
			uint16_t content_length, uint8_t padding_length);

/* Padding that brings a content length to a multiple of 8 (spec §3.3 recommends it). */
static inline uint8_t fcgi_padding_for(size_t content_length)
{
	return (uint8_t)((8 - (content_length & 7)) & 7);
}

/* ---- name-value pairs (spec §3.4) ------------------------------------- */

/*
 * Decodes one pair from buf.  Returns bytes consumed (> 0), 0 when buf holds
 * only part of a pair, or -1 when the lengths cannot be valid (a length over
 * 2^31-1 never occurs: the high bit is the form flag).  The name and value
 * point into buf.
 */
ssize_t fcgi_nv_decode(const uint8_t *buf, size_t len,
		       const uint8_t **name, uint32_t *name_len,
		       const uint8_t **value, uint32_t *value_len);

/* Bytes needed to encode a pair. */
size_t fcgi_nv_size(size_t name_len, size_t value_len);

/*
 * Encodes one pair into out (capacity cap).  Returns bytes written, or 0 when
 * cap is too small or a length exceeds 2^31-1.
 */
size_t fcgi_nv_encode(uint8_t *out, size_t cap, const void *name, size_t name_len,
		      const void *value, size_t value_len);

/* ---- request parser (server side) ------------------------------------- */

struct fcgi_limits {
	size_t max_params_size;   /* total bytes of all names and values; default 128 KiB */
	size_t max_params_count;  /* number of pairs; default 1024 */
	size_t max_name_len;      /* one name; default 1024 */
	unsigned max_conns;       /* answered to FCGI_GET_VALUES */
	unsigned max_reqs;
};

#define FCGI_DEFAULT_MAX_PARAMS_SIZE  (128u * 1024u)
#define FCGI_DEFAULT_MAX_PARAMS_COUNT 1024u
#define FCGI_DEFAULT_MAX_NAME_LEN     1024u

/*
 * Largest FCGI_GET_VALUES content the parser reads (it is buffered whole);
 * larger gives FCGI_E_MGMT_TOO_LARGE.  The three names it knows fit in 48 bytes.
 */
#define FCGI_MGMT_MAX                 512u

void fcgi_limits_default(struct fcgi_limits *l);
/* 1 for an error that is a request over the limits (params size, count, a name's length). */
int fcgi_error_is_limit(int error);

/*
 * One parameter: NUL-terminated copies held in the parser's arena.  A name
 * sent twice keeps its first position and its last value.
 */
struct fcgi_param {
	const char *name;
	const char *value;
	uint32_t    name_len;
	uint32_t    value_len;
};

enum fcgi_event_kind {
	FCGI_EV_NONE = 0,     /* nothing to do; feed more bytes */
	FCGI_EV_PARAMS_DONE,  /* BEGIN_REQUEST + every PARAMS record arrived: dispatch now */
	FCGI_EV_STDIN,        /* data/len: a piece of the request body (points into the fed buffer) */
	FCGI_EV_STDIN_END,    /* the empty STDIN record: the body is complete */
	FCGI_EV_DATA,         /* FILTER role's FCGI_DATA stream piece */
	FCGI_EV_DATA_END,
	FCGI_EV_ABORT,        /* FCGI_ABORT_REQUEST for the active request */
	FCGI_EV_REPLY,        /* data/len: bytes the server must write back as they are
				 (GET_VALUES_RESULT, UNKNOWN_TYPE, END_REQUEST refusing a
				 second request id or an unknown role); valid until the next feed */
};

struct fcgi_event {
	enum fcgi_event_kind kind;
	const uint8_t *data;
	size_t len;
};

enum fcgi_error {
	FCGI_OK = 0,
	FCGI_E_VERSION,          /* version byte is not 1 */
	FCGI_E_BEGIN_BODY,       /* BEGIN_REQUEST content length is not 8 */
	FCGI_E_UNEXPECTED,       /* a record that cannot come now (PARAMS after the empty PARAMS,
				    STDIN before PARAMS ended, a stream record after its
				    stream ended, a second BEGIN_REQUEST for the active id;
				    records for other ids are ignored, spec §3.3) */
	FCGI_E_NV_MALFORMED,     /* a name-value pair runs past its stream or has bad lengths */
	FCGI_E_PARAMS_TOO_LARGE, /* total params bytes over max_params_size */
	FCGI_E_PARAMS_TOO_MANY,  /* more pairs than max_params_count */
	FCGI_E_NAME_TOO_LONG,
	FCGI_E_BAD_NAME,         /* empty name, or a NUL or '=' in it */
	FCGI_E_NO_MEMORY,
	FCGI_E_MGMT_TOO_LARGE,   /* management record content too big to answer */
	FCGI_E_END_BODY,         /* END_REQUEST content length is not 8 (response reader) */
};

/* A human-readable reason for an error code ("bad FastCGI version" ...). */
const char *fcgi_strerror(enum fcgi_error err);

/*
 * Per-connection parser.  Owns its header buffer and the params arena (one
 * allocation, grown up to max_params_size and reused across keep-alive
 * requests).  The caller owns the struct; fcgi_parser_free() releases the
 * arena.
 */
struct fcgi_parser {
	struct fcgi_limits limits;
	int      state;                /* private */
	uint8_t  hdr[FCGI_HEADER_LEN]; /* private: partial header */
	size_t   hdr_have;
	struct fcgi_header cur;        /* private: record being read */
	size_t   content_left;
	size_t   padding_left;
	uint8_t  rec[FCGI_HEADER_LEN + 8]; /* private: BEGIN/ABORT body */
	size_t   rec_have;

	/* request state, readable by the caller after FCGI_EV_PARAMS_DONE */
	uint16_t request_id;
	uint16_t role;
	uint8_t  flags;                /* FCGI_KEEP_CONN */
	int      params_done;
	int      stdin_done;
	int      aborted;

	/* params: raw pair bytes accumulate in nvbuf until the empty PARAMS record */
	uint8_t *nvbuf;
	size_t   nvbuf_len, nvbuf_cap;
	char    *arena;                /* NUL-terminated copies of names and values */
	size_t   arena_len, arena_cap;
	struct fcgi_param *params;
	size_t   nparams, params_cap;
	/*
	 * private: the params' index, built once per request when the params
	 * are decoded.  Open addressing over a power-of-two table at most half
	 * full; a slot holds a name's hash and its param's position + 1 (0: empty).
	 */
	struct fcgi_param_slot { uint32_t hash, pos1; } *index;
	size_t   index_cap;

	uint8_t  reply[512];           /* private: management and refusal replies */
	size_t   reply_len;

	int      active;               /* private: a BEGIN_REQUEST was accepted */
	int      data_done;            /* the empty DATA record arrived (FILTER) */
	uint8_t  mgmt[FCGI_MGMT_MAX];  /* private: GET_VALUES content being read */
	size_t   mgmt_have;

	enum fcgi_error error;         /* set when feed returns -1 */
};

/*
 * limits NULL means fcgi_limits_default(); a zero max_params_size,
 * max_params_count or max_name_len also takes the default.
 */
void fcgi_parser_init(struct fcgi_parser *p, const struct fcgi_limits *limits);
/*
 * Forget the finished request, keep buffers: the next BEGIN_REQUEST may come.
 * Record framing survives: if the request's records are still arriving, the
 * rest of them is skipped.  For a new connection use free + init instead.
 */
void fcgi_parser_reset(struct fcgi_parser *p);
/* A new connection: forget everything but the allocated buffers. */
void fcgi_parser_restart(struct fcgi_parser *p);
void fcgi_parser_free(struct fcgi_parser *p);

/*
 * Feeds bytes.  Returns how many were consumed (0 ≤ n ≤ len) and stores at
 * most one event in *ev; the caller handles the event, then feeds the rest
 * (buf + n).  When the return is len and ev->kind is FCGI_EV_NONE, more input
 * is needed.  Returns -1 on a protocol error (p->error says which); the
 * connection must then be closed.  Feeding the same bytes in one call or
 * one byte per call yields the same sequence of events (STDIN pieces may be
 * split differently, their concatenation is the same).
 */
ssize_t fcgi_parser_feed(struct fcgi_parser *p, const uint8_t *buf, size_t len,
			 struct fcgi_event *ev);

/*
 * Looks a param up by exact name; NULL when absent. Valid after FCGI_EV_PARAMS_DONE.
 * A hash lookup (the index above): PHP asks for two dozen names per request,
 * most of them absent, which a linear scan paid with every param.
 */
const struct fcgi_param *fcgi_param_get(const struct fcgi_parser *p, const char *name);
const char *fcgi_param_value(const struct fcgi_parser *p, const char *name);

/* ---- response writer -------------------------------------------------- */

/*
 * Builds the header of one stream record (STDOUT/STDERR) for up to
 * FCGI_MAX_CONTENT bytes of content.  Returns how many content bytes the
 * record carries (min(len, 65535)) and stores its padding length in *padding.
 * The caller writes header, content, then *padding zero bytes (fcgi_zero_pad).
 * A zero len gives the stream's terminating empty record.
 */
size_t fcgi_stream_header(uint8_t out[FCGI_HEADER_LEN], uint8_t type, uint16_t request_id,
			  size_t len, uint8_t *padding);

extern const uint8_t fcgi_zero_pad[8];

/*
 * Encodes whole STDOUT or STDERR records for data into out: as many records as
 * needed, each padded.  Returns bytes written, or 0 if cap is too small
 * (fcgi_stream_size tells what is needed).  len 0 writes the empty terminator.
 */
size_t fcgi_stream_size(size_t len);
size_t fcgi_stream_encode(uint8_t *out, size_t cap, uint8_t type, uint16_t request_id,
			  const void *data, size_t len);

#define FCGI_END_REQUEST_LEN 16
void fcgi_end_request_encode(uint8_t out[FCGI_END_REQUEST_LEN], uint16_t request_id,
			     uint32_t app_status, uint8_t protocol_status);

/* ---- client side (fpmctl, tests) -------------------------------------- */

#define FCGI_BEGIN_REQUEST_LEN 16
void fcgi_begin_request_encode(uint8_t out[FCGI_BEGIN_REQUEST_LEN], uint16_t request_id,
			       uint16_t role, uint8_t flags);

/*
 * Incremental reader of the records a server sends back.  Yields pieces of
 * STDOUT/STDERR content (pointing into the fed buffer) and the END_REQUEST.
 * Empty STDOUT/STDERR records (stream ends) yield nothing; a record of any
 * other type is reported once, at its header, then skipped.  It does not
 * stop after END_REQUEST: the caller does.
 */
enum fcgi_resp_kind {
	FCGI_RESP_NONE = 0,
	FCGI_RESP_STDOUT,
	FCGI_RESP_STDERR,
	FCGI_RESP_END,           /* app_status / protocol_status set */
	FCGI_RESP_OTHER,         /* a record of another type, skipped (type in other_type) */
};

struct fcgi_resp_event {
	enum fcgi_resp_kind kind;
	const uint8_t *data;
	size_t len;
	uint32_t app_status;
	uint8_t protocol_status;
	uint8_t other_type;
	uint16_t request_id;
};

struct fcgi_resp_reader {
	uint8_t hdr[FCGI_HEADER_LEN];
	size_t  hdr_have;
	struct fcgi_header cur;
	size_t  content_left, padding_left;
	uint8_t body[8];
	size_t  body_have;
	int     in_record;
	enum fcgi_error error;
};

void fcgi_resp_reader_init(struct fcgi_resp_reader *r);
/* Same contract as fcgi_parser_feed. */
ssize_t fcgi_resp_reader_feed(struct fcgi_resp_reader *r, const uint8_t *buf, size_t len,
			      struct fcgi_resp_event *ev);

#endif
