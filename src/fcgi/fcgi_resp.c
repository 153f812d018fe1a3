/*
 * Client-side reader of what an application sends back: STDOUT and STDERR
 * pieces, then END_REQUEST.  Used by fpmctl and the tests; the same
 * incremental contract as the request parser.
 */
#include <string.h>

#include "fcgi/fcgi.h"

enum rstate {
	R_HEADER = 0,
	R_CONTENT,
	R_PADDING,
	R_ERROR,
};

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

void fcgi_resp_reader_init(struct fcgi_resp_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->in_record = R_HEADER;
}

static ssize_t fail(struct fcgi_resp_reader *r, enum fcgi_error e)
{
	r->error = e;
	r->in_record = R_ERROR;
	return -1;
}

static void record_done(struct fcgi_resp_reader *r)
{
	r->in_record = r->padding_left ? R_PADDING : R_HEADER;
}

/* FCGI_EndRequestBody (spec §5.5): appStatus big-endian, then protocolStatus. */
static void end_event(struct fcgi_resp_reader *r, struct fcgi_resp_event *ev)
{
	const uint8_t *b = r->body;

	ev->kind = FCGI_RESP_END;
	ev->app_status = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
			 ((uint32_t)b[2] << 8) | b[3];
	ev->protocol_status = b[4];
}

/*
 * A complete header.  Empty STDOUT/STDERR records (stream terminators) give
 * no event; records of other types are reported once, then skipped.
 */
static int on_header(struct fcgi_resp_reader *r, struct fcgi_resp_event *ev)
{
	fcgi_header_decode(r->hdr, &r->cur);
	r->hdr_have = 0;
	if (r->cur.version != FCGI_VERSION_1)
		return (int)fail(r, FCGI_E_VERSION);
	r->content_left = r->cur.content_length;
	r->padding_left = r->cur.padding_length;
	r->body_have = 0;
	ev->request_id = r->cur.request_id;
	if (r->cur.type == FCGI_END_REQUEST && r->cur.content_length != 8)
		return (int)fail(r, FCGI_E_END_BODY);
	if (r->cur.type != FCGI_STDOUT && r->cur.type != FCGI_STDERR &&
	    r->cur.type != FCGI_END_REQUEST) {
		ev->kind = FCGI_RESP_OTHER;
		ev->other_type = r->cur.type;
	}
	r->in_record = R_CONTENT;
	if (!r->content_left)
		record_done(r);
	return 0;
}

ssize_t fcgi_resp_reader_feed(struct fcgi_resp_reader *r, const uint8_t *buf, size_t len,
			      struct fcgi_resp_event *ev)
{
	size_t off = 0, n;

	memset(ev, 0, sizeof(*ev));
	if (r->in_record == R_ERROR)
		return -1;
	while (off < len && ev->kind == FCGI_RESP_NONE) {
		switch (r->in_record) {
		case R_HEADER:
			n = min_sz(FCGI_HEADER_LEN - r->hdr_have, len - off);
			memcpy(r->hdr + r->hdr_have, buf + off, n);
			r->hdr_have += n;
			off += n;
			if (r->hdr_have == FCGI_HEADER_LEN && on_header(r, ev) < 0)
				return -1;
			break;
		case R_PADDING:
			n = min_sz(r->padding_left, len - off);
			r->padding_left -= n;
			off += n;
			if (!r->padding_left)
				r->in_record = R_HEADER;
			break;
		default:
			n = min_sz(r->content_left, len - off);
			ev->request_id = r->cur.request_id;
			if (r->cur.type == FCGI_STDOUT || r->cur.type == FCGI_STDERR) {
				ev->kind = r->cur.type == FCGI_STDOUT ? FCGI_RESP_STDOUT
								      : FCGI_RESP_STDERR;
				ev->data = buf + off;
				ev->len = n;
			} else if (r->cur.type == FCGI_END_REQUEST) {
				memcpy(r->body + r->body_have, buf + off, n);
				r->body_have += n;
			}
			off += n;
			r->content_left -= n;
			if (r->content_left)
				break;
			if (r->cur.type == FCGI_END_REQUEST)
				end_event(r, ev);
			record_done(r);
			break;
		}
	}
	return (ssize_t)off;
}
