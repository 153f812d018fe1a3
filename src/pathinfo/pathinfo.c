/*
 * php-fpm's request path rules (see pathinfo.h), rewritten around owned
 * copies and explicit lengths.  Where php-fpm edits the FastCGI
 * environment in place, this records the variable in out->vars instead.
 */
#include "pathinfo/pathinfo.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static char *dup_s(const char *s)
{
	return s ? dup_n(s, strlen(s)) : NULL;
}

void pathinfo_free(struct pathinfo *pi)
{
	free(pi->script);
	free(pi->request_uri);
	for (size_t i = 0; i < pi->nvars; i++) {
		free(pi->vars[i].name);
		free(pi->vars[i].value);
	}
	memset(pi, 0, sizeof(*pi));
}

/* Sets (or, with value NULL, removes) a variable; a later call for a name wins. */
static int set_var(struct pathinfo *out, const char *name, const char *value)
{
	char *v = NULL;
	if (value && !(v = dup_s(value)))
		return -1;
	for (size_t i = 0; i < out->nvars; i++)
		if (strcmp(out->vars[i].name, name) == 0) {
			free(out->vars[i].value);
			out->vars[i].value = v;
			return 0;
		}
	if (out->nvars == PATHINFO_MAX_VARS) {
		free(v);
		return -1;
	}
	char *n = dup_s(name);
	if (!n) {
		free(v);
		return -1;
	}
	out->vars[out->nvars].name = n;
	out->vars[out->nvars].value = v;
	out->nvars++;
	return 0;
}

const char *pathinfo_var(const struct pathinfo *pi, const struct pathinfo_in *in,
			 const char *name, int *changed)
{
	for (size_t i = 0; i < pi->nvars; i++)
		if (strcmp(pi->vars[i].name, name) == 0) {
			if (changed)
				*changed = 1;
			return pi->vars[i].value;
		}
	if (changed)
		*changed = 0;
	return in->param(name, in->ctx);
}

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* rawurldecode: %XX only ('+' stays '+'). */
static char *url_decode(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1), *o = d;
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			*o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return d;
}

/* Apache's "proxy:fcgi://host:port/path?query" → "/path" (in place); 1 when it was one. */
static int strip_proxy_prefix(char *sf)
{
	static const char *const prefixes[] = { "proxy:fcgi://", "proxy:balancer://" };
	int stripped = 0;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (strncasecmp(sf, prefixes[i], n) != 0)
			continue;
		char *p = strchr(sf + n, '/');
		if (p) {
			memmove(sf, p, strlen(p) + 1);
			stripped = 1;
		}
		char *q = strchr(sf, '?');
		if (q)
			*q = '\0';
	}
	return stripped;
}

struct state {
	const struct pathinfo_in *in;
	struct pathinfo *out;
	char *sf;          /* SCRIPT_FILENAME, as edited */
	char *pt_env;      /* PATH_TRANSLATED */
	char *spt;         /* the script path being worked out (owned) */
	char *sn;          /* SCRIPT_NAME, as edited */
	char *orig_sn;
	char *pi;          /* PATH_INFO, as edited */
	char *orig_pi;
	int apache;        /* SCRIPT_FILENAME came as proxy:fcgi:// */
	int oom;
};

static void put(struct state *s, const char *name, const char *value)
{
	if (set_var(s->out, name, value) < 0)
		s->oom = 1;
}

static void set_request_uri(struct state *s, const char *v)
{
	free(s->out->request_uri);
	s->out->request_uri = dup_s(v);
	if (v && !s->out->request_uri)
		s->oom = 1;
}

static void replace(struct state *s, char **slot, const char *v)
{
	char *d = dup_s(v);
	if (v && !d)
		s->oom = 1;
	free(*slot);
	*slot = d;
}

/*
 * The script file is pt, a prefix of spt; the rest of spt is path info.
 * php-fpm's bookkeeping of what changed, with lengths checked.
 */
static void found_prefix(struct state *s, const char *pt, const char *orig_sf,
			 const char *orig_pt, const char *docroot)
{
	size_t ptlen = strlen(pt), len = strlen(s->spt);
	size_t slen = len - ptlen;                  /* what was cut off; pt is a prefix of spt */
	size_t pilen = s->pi ? strlen(s->pi) : 0;
	char *path_info = NULL;
	int tflag;

	if (s->apache) {
		/* mod_proxy_fcgi sends no PATH_INFO: it is what was cut off */
		path_info = dup_s(s->spt + ptlen);
		tflag = slen != 0 && (!s->orig_pi || strcmp(s->orig_pi, path_info) != 0);
	} else {
		/* the tail of the server's PATH_INFO, as long as what was cut off */
		path_info = s->pi && pilen > slen ? dup_s(s->pi + pilen - slen) : NULL;
		tflag = path_info != NULL;
	}
	if (tflag) {
		if (s->orig_pi) {
			put(s, "ORIG_PATH_INFO", s->orig_pi);
			/* SCRIPT_NAME becomes PATH_INFO without the new path info */
			char *head = s->apache ? dup_s(s->pi) : dup_n(s->pi, pilen - slen);
			if (!head) {
				s->oom = 1;
			} else if (!s->orig_sn || strcmp(s->orig_sn, head) != 0) {
				if (s->orig_sn)
					put(s, "ORIG_SCRIPT_NAME", s->orig_sn);
				put(s, "SCRIPT_NAME", head);
				set_request_uri(s, head);
			} else {
				set_request_uri(s, s->orig_sn);
			}
			free(head);
		} else if (s->apache && s->sn) {
			/* ProxyPass: the path info is in SCRIPT_NAME too, maybe URL-encoded there */
			char *decoded = strchr(path_info, '%') ? url_decode(path_info) : NULL;
			size_t snlen = strlen(s->sn), dlen = decoded ? strlen(decoded) : 0, start = 0;
			int strip = 0;
			if (snlen > slen && strcmp(s->sn + snlen - slen, path_info) == 0) {
				start = snlen - slen;
				strip = 1;
			} else if (decoded && snlen > dlen && strcmp(s->sn + snlen - dlen, decoded) == 0) {
				start = snlen - dlen;
				strip = 1;
			}
			if (strip) {
				put(s, "ORIG_SCRIPT_NAME", s->orig_sn);
				s->sn[start] = '\0';
				put(s, "SCRIPT_NAME", s->sn);
				set_request_uri(s, s->sn);
			}
			free(decoded);
		}
		put(s, "PATH_INFO", path_info);
		replace(s, &s->pi, path_info);
	}
	free(path_info);

	if (!orig_sf || strcmp(orig_sf, pt) != 0) {
		if (orig_sf)
			put(s, "ORIG_SCRIPT_FILENAME", orig_sf);
		put(s, "SCRIPT_FILENAME", pt);
	}
	replace(s, &s->spt, pt);

	/* PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO, or SCRIPT_FILENAME - SCRIPT_NAME + PATH_INFO */
	size_t base = 0;
	const char *from = NULL;
	if (docroot) {
		base = strlen(docroot);
		if (base && docroot[base - 1] == '/')
			base--;
		from = docroot;
	} else if (s->sn && strstr(s->spt, s->sn)) {
		size_t a = strlen(s->spt), b = strlen(s->sn);
		base = a >= b ? a - b : 0;
		from = s->spt;
	}
	if (from) {
		size_t pl = s->pi ? strlen(s->pi) : 0;
		char *t = malloc(base + pl + 1);
		if (!t) {
			s->oom = 1;
			return;
		}
		memcpy(t, from, base);
		if (pl)
			memcpy(t + base, s->pi, pl);
		t[base + pl] = '\0';
		if (orig_pt)
			put(s, "ORIG_PATH_TRANSLATED", orig_pt);
		put(s, "PATH_TRANSLATED", t);
		free(t);
	}
}

static void fix_pathinfo(struct state *s)
{
	const struct pathinfo_in *in = s->in;
	const char *redirect_url = in->param("REDIRECT_URL", in->ctx);
	const char *docroot = in->param("DOCUMENT_ROOT", in->ctx);
	char *orig_pt = dup_s(s->pt_env), *orig_sf = dup_s(s->sf);
	int sn_changed = 0;

	if (!docroot && in->doc_root && *in->doc_root) {
		docroot = in->doc_root;
		put(s, "DOCUMENT_ROOT", docroot);
	}
	/* mod_fastcgi: SCRIPT_FILENAME and SCRIPT_NAME name the interpreter */
	if (!s->apache && s->pt_env && redirect_url && s->sf && strcmp(s->pt_env, s->spt) != 0) {
		replace(s, &s->spt, s->pt_env);
		replace(s, &s->sn, redirect_url);
		sn_changed = 1;
	}
	size_t len = s->spt ? strlen(s->spt) : 0;
	if (len && (s->spt[len - 1] == '/' || !in->exists(s->spt, in->ctx))) {
		/* walk back through the '/'s to the file: /info.php/test runs /info.php */
		char *pt = dup_n(s->spt, len);
		int found = 0;
		while (pt && !found) {
			char *slash = strrchr(pt, '/');
			if (!slash)
				slash = strrchr(pt, '\\');
			if (!slash)
				break;
			*slash = '\0';
			if (in->is_file(pt, in->ctx)) {
				found_prefix(s, pt, orig_sf, orig_pt, docroot);
				found = 1;
			}
		}
		if (!pt)
			s->oom = 1;
		free(pt);
		if (!found) {
			if (orig_sf)
				put(s, "ORIG_SCRIPT_FILENAME", orig_sf);
			put(s, "SCRIPT_FILENAME", NULL);
			free(s->spt);
			s->spt = NULL;
		}
		if (!s->out->request_uri) {
			if (!s->orig_sn || !str_eq(s->orig_sn, s->sn)) {
				if (s->orig_sn)
					put(s, "ORIG_SCRIPT_NAME", s->orig_sn);
				put(s, "SCRIPT_NAME", s->sn);
				set_request_uri(s, s->sn);
			} else {
				set_request_uri(s, s->orig_sn);
			}
		}
	} else {
		if (!orig_sf || !str_eq(s->spt, orig_sf)) {
			if (orig_sf)
				put(s, "ORIG_SCRIPT_FILENAME", orig_sf);
			put(s, "SCRIPT_FILENAME", s->spt);
		}
		if (!s->apache && redirect_url) {
			/* what mod_fastcgi's PATH_INFO and PATH_TRANSLATED described was the interpreter */
			if (s->orig_pi) {
				put(s, "ORIG_PATH_INFO", s->orig_pi);
				put(s, "PATH_INFO", NULL);
			}
			if (orig_pt) {
				put(s, "ORIG_PATH_TRANSLATED", orig_pt);
				put(s, "PATH_TRANSLATED", NULL);
			}
		}
		if (sn_changed) {
			if (s->orig_sn)
				put(s, "ORIG_SCRIPT_NAME", s->orig_sn);
			put(s, "SCRIPT_NAME", s->sn);
		}
		set_request_uri(s, s->sn);
	}
	free(orig_pt);
	free(orig_sf);
}

int pathinfo_resolve(const struct pathinfo_in *in, struct pathinfo *out)
{
	memset(out, 0, sizeof(*out));
	struct state s = { .in = in, .out = out };
	const char *p;

	s.sf = dup_s(in->param("SCRIPT_FILENAME", in->ctx));
	s.pt_env = dup_s(in->param("PATH_TRANSLATED", in->ctx));
	/* Some servers (IIS) send only PATH_TRANSLATED */
	s.spt = dup_s(s.sf ? s.sf : s.pt_env);
	if (!s.spt)
		goto done;          /* nothing to run: 404 */
	s.pi = dup_s(in->param("PATH_INFO", in->ctx));
	s.sn = dup_s(in->param("SCRIPT_NAME", in->ctx));

	/* IIS sends SCRIPT_NAME + PATH_INFO as PATH_INFO */
	p = in->param("SERVER_SOFTWARE", in->ctx);
	if (p && s.sn && s.pi && strncmp(p, "Microsoft-IIS", 13) == 0 &&
	    strncmp(s.pi, s.sn, strlen(s.sn)) == 0) {
		put(&s, "ORIG_PATH_INFO", s.pi);
		const char *rest = s.pi + strlen(s.sn);
		char *np = *rest ? dup_s(rest) : NULL;
		free(s.pi);
		s.pi = np;
		put(&s, "PATH_INFO", s.pi);
	}
	if (s.sf && strip_proxy_prefix(s.sf)) {
		s.apache = 1;
		put(&s, "SCRIPT_FILENAME", s.sf);
		replace(&s, &s.spt, s.sf);
	} else if (s.sf) {
		/* a proxy prefix without a path: php-fpm leaves it, minus any query */
		replace(&s, &s.spt, s.sf);
	}
	s.orig_pi = dup_s(s.pi);
	s.orig_sn = dup_s(s.sn);

	if (in->fix_pathinfo) {
		fix_pathinfo(&s);
	} else {
		/* the CGI spec's way: PATH_TRANSLATED names the script */
		set_request_uri(&s, s.pi ? s.pi : s.sn);
		if (!in->discard_path && s.pt_env)
			replace(&s, &s.spt, s.pt_env);
	}
	/* an empty name is no name: 404, not a 403 for its (missing) extension */
	if (s.spt && *s.spt && pathinfo_valid(s.spt)) {
		out->script = s.spt;
		s.spt = NULL;
	}
done:
	free(s.sf);
	free(s.pt_env);
	free(s.spt);
	free(s.sn);
	free(s.orig_sn);
	free(s.pi);
	free(s.orig_pi);
	if (s.oom) {
		pathinfo_free(out);
		return -1;
	}
	return 0;
}

int pathinfo_valid(const char *path)
{
	if (!path)
		return 0;
	for (const char *p = strstr(path, ".."); p; p = strstr(p + 1, "..")) {
		int starts = p == path || p[-1] == '/' || p[-1] == '\\';
		int ends = p[2] == '\0' || p[2] == '/' || p[2] == '\\';
		if (starts && ends)
			return 0;
	}
	return 1;
}

int pathinfo_extension_allowed(const char *script, const char *const *exts, unsigned n)
{
	if (n == 0)
		return 1;
	size_t len = strlen(script);
	/* A suffix match, as php-fpm's: ".tar.php" style lists work too. */
	for (unsigned i = 0; i < n; i++) {
		size_t el = exts[i] ? strlen(exts[i]) : 0;
		if (el && el <= len && strcmp(script + len - el, exts[i]) == 0)
			return 1;
	}
	return 0;
}
