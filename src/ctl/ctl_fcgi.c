/*
 * The client half of a FastCGI exchange shared by fpmctl's subcommands: a
 * list of CGI params and the request bytes built from it with the codec.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "fcgi/fcgi.h"

int ctl_params_set(struct ctl_params *ps, const char *name, size_t nl, const char *value)
{
	struct ctl_param *p = NULL, *nv;
	char *v;
	size_t i;

	for (i = 0; i < ps->n && !p; i++)
		if (strlen(ps->v[i].name) == nl && memcmp(ps->v[i].name, name, nl) == 0)
			p = &ps->v[i];
	if (!p) {
		nv = realloc(ps->v, (ps->n + 1) * sizeof(*nv));
		if (!nv)
			return -1;
		ps->v = nv;
		nv[ps->n].name = strndup(name, nl);
		nv[ps->n].value = NULL;
		if (!nv[ps->n].name)
			return -1;
		p = &ps->v[ps->n++];
	}
	if (!(v = strdup(value)))
		return -1;
	free(p->value);
	p->value = v;
	return 0;
}

void ctl_params_free(struct ctl_params *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		free(ps->v[i].name);
		free(ps->v[i].value);
	}
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

/* A whole stream at *off: data records (if any), then the empty one. */
static void put_stream(uint8_t *out, size_t *off, size_t cap, uint8_t type, uint16_t id,
		       const void *data, size_t len)
{
	if (len)
		*off += fcgi_stream_encode(out + *off, cap - *off, type, id, data, len);
	*off += fcgi_stream_encode(out + *off, cap - *off, type, id, NULL, 0);
}

/* Pairs may straddle PARAMS records (spec §5.2): encode them all, then cut. */
uint8_t *ctl_fcgi_encode(const struct ctl_params *ps, uint16_t request_id,
			 const void *body, size_t body_len, size_t *len)
{
	size_t nvlen = 0, off = 0, cap, i;
	uint8_t *nv, *out;

	for (i = 0; i < ps->n; i++)
		nvlen += fcgi_nv_size(strlen(ps->v[i].name), strlen(ps->v[i].value));
	nv = malloc(nvlen ? nvlen : 1);
	if (!nv)
		return NULL;
	for (i = 0; i < ps->n; i++)
		off += fcgi_nv_encode(nv + off, nvlen - off, ps->v[i].name, strlen(ps->v[i].name),
				      ps->v[i].value, strlen(ps->v[i].value));
	cap = FCGI_BEGIN_REQUEST_LEN + fcgi_stream_size(nvlen) + FCGI_HEADER_LEN +
	      fcgi_stream_size(body_len) + FCGI_HEADER_LEN;
	out = malloc(cap);
	if (out) {
		fcgi_begin_request_encode(out, request_id, FCGI_RESPONDER, 0);
		*len = FCGI_BEGIN_REQUEST_LEN;
		put_stream(out, len, cap, FCGI_PARAMS, request_id, nv, nvlen);
		put_stream(out, len, cap, FCGI_STDIN, request_id, body, body_len);
	}
	free(nv);
	return out;
}
