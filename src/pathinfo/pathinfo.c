/*
 * cgi.fix_pathinfo resolution (see pathinfo.h).  Every length is checked
 * before it is subtracted: php-fpm's CVE-2019-11043 was a PATH_INFO that a
 * newline in the URL made shorter than the code assumed.
 */
#include "pathinfo/pathinfo.h"

#include <stdlib.h>
#include <string.h>

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

static char *concat(const char *a, const char *b)
{
	size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
	char *d = malloc(la + lb + 1);
	if (d) {
		if (la)
			memcpy(d, a, la);
		if (lb)
			memcpy(d + la, b, lb);
		d[la + lb] = '\0';
	}
	return d;
}

/* Apache's mod_proxy_fcgi sends "proxy:fcgi://host:port/path": the path is the script. */
static const char *strip_proxy_prefix(const char *s)
{
	static const char *const prefixes[] = { "proxy:fcgi://", "proxy:balancer://" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(s, prefixes[i], n) == 0) {
			const char *slash = strchr(s + n, '/');
			return slash ? slash : s + strlen(s);
		}
	}
	return s;
}

void pathinfo_free(struct pathinfo *pi)
{
	free(pi->script);
	free(pi->script_name);
	free(pi->path_info);
	free(pi->path_translated);
	free(pi->php_self);
	memset(pi, 0, sizeof(*pi));
}

/*
 * Walks back from the end of sf to the longest prefix that is a regular
 * file.  Returns its length, or 0 when none is.
 */
static size_t longest_file_prefix(const struct pathinfo_in *in, char *buf, size_t len)
{
	while (len > 1) {
		char *slash = memrchr(buf, '/', len);
		if (!slash || slash == buf)
			return 0;
		len = (size_t)(slash - buf);
		char saved = buf[len];
		buf[len] = '\0';
		int file = in->is_file(buf, in->ctx);
		buf[len] = saved;
		if (file)
			return len;
	}
	return 0;
}

int pathinfo_resolve(const struct pathinfo_in *in, struct pathinfo *out)
{
	memset(out, 0, sizeof(*out));
	const char *sf = in->script_filename && *in->script_filename
		? strip_proxy_prefix(in->script_filename) : NULL;
	const char *sn = in->script_name ? in->script_name : "";
	const char *pi = in->path_info;

	out->script_name = dup_s(sn);
	out->path_info = pi ? dup_s(pi) : NULL;
	out->path_translated = in->path_translated ? dup_s(in->path_translated) : NULL;
	if (!out->script_name || (pi && !out->path_info) ||
	    (in->path_translated && !out->path_translated))
		goto oom;
	if (!sf || !*sf) {
		out->php_self = concat(out->script_name, out->path_info);
		return out->php_self ? 0 : (pathinfo_free(out), -1);
	}

	out->script = dup_s(sf);
	if (!out->script)
		goto oom;
	out->found = in->is_file(out->script, in->ctx);
	if (!out->found && in->fix_pathinfo) {
		size_t len = strlen(out->script);
		size_t keep = longest_file_prefix(in, out->script, len);
		if (keep) {
			const char *extra = sf + keep;          /* starts with '/' */
			size_t extra_len = len - keep;
			out->script[keep] = '\0';
			out->found = 1;
			if (!out->path_info || !*out->path_info) {
				free(out->path_info);
				out->path_info = dup_n(extra, extra_len);
				if (!out->path_info)
					goto oom;
			}
			/* SCRIPT_NAME loses the path info only when it really ends with it. */
			size_t sn_len = strlen(out->script_name);
			if (sn_len > extra_len &&
			    memcmp(out->script_name + sn_len - extra_len, extra, extra_len) == 0)
				out->script_name[sn_len - extra_len] = '\0';
			if (in->document_root && *in->document_root) {
				free(out->path_translated);
				size_t dl = strlen(in->document_root);
				/* one slash between them, whatever the configuration wrote */
				char *root = dup_n(in->document_root,
						   dl > 1 && in->document_root[dl - 1] == '/' ? dl - 1 : dl);
				out->path_translated = root ? concat(root, out->path_info) : NULL;
				free(root);
				if (!out->path_translated)
					goto oom;
			}
		}
	}
	if (out->path_info && !*out->path_info) {
		free(out->path_info);
		out->path_info = NULL;
	}
	out->php_self = concat(out->script_name, out->path_info);
	if (!out->php_self)
		goto oom;
	return 0;
oom:
	pathinfo_free(out);
	return -1;
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
