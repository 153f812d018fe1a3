/*
 * Entry points: conf_load, conf_load_string, conf_free, and the pool
 * bookkeeping the reader needs.  A load runs in three steps: defaults from
 * the directive table, the files read in order, then conf_validate's
 * defaults-that-depend-on-other-values and cross-field rules.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_internal.h"

/* What a NULL conf_options means: nothing from the command line. */
static const struct conf_options no_options = { .daemonize = CONF_UNSET };

/* Frees every field the directive table describes in base. */
static void free_fields(void *base, unsigned section_flag)
{
	for (size_t i = 0; i < conf_ndirectives; i++) {
		const struct conf_directive *d = &conf_directives[i];

		if (!(d->flags & section_flag) || (d->flags & CF_NOEFFECT))
			continue;
		switch (d->type) {
		case CT_STR:
		case CT_CHOICE: {
			char **s = conf_field(base, d);

			free(*s);
			*s = NULL;
			break;
		}
		case CT_LIST:
		case CT_WORDS:
			conf_str_list_free(conf_field(base, d));
			break;
		case CT_KV:
			conf_kv_list_free(conf_field(base, d));
			break;
		default:
			break;
		}
	}
}

static void pool_free(struct pool_conf *p)
{
	if (!p)
		return;
	free_fields(p, CF_POOL);
	conf_kv_list_free(&p->where);
	free(p->name);
	free(p->file);
	free(p);
}

void conf_free(struct fpmd_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->npools; i++)
		pool_free(c->pools[i]);
	free(c->pools);
	free_fields(c, CF_GLOBAL);
	conf_kv_list_free(&c->where);
	free(c->file);
	free(c->prefix);
	free(c);
}

/*
 * Makes [name] the current pool: an existing one (names compare without
 * case, as php-fpm's) or a new one with the table's defaults.
 */
int conf_pool_open(struct conf_ctx *x, const char *name, const char *file, int line,
		   size_t *index)
{
	struct fpmd_conf *c = x->c;
	struct pool_conf *p, **pools;
	struct conf_pool_state *ps;

	for (size_t i = 0; i < c->npools; i++)
		if (strcasecmp(c->pools[i]->name, name) == 0) {
			/*
			 * One pool, as php-fpm merges them.  In another file it is
			 * the usual override (pool.d/zz-local.conf); twice in one
			 * file it is more likely a copied section.
			 */
			if (strcmp(c->pools[i]->file, file) == 0)
				conf_diag_add(x, 0, file, line, "[%s] opened again (first at line %d): "
					      "its directives go to the same pool, the last value of each "
					      "counts; rename one of them if they are two pools", name,
					      c->pools[i]->line);
			*index = i;
			return 0;
		}
	pools = realloc(c->pools, (c->npools + 1) * sizeof(*pools));
	if (!pools)
		goto out_oom;
	c->pools = pools;
	ps = realloc(x->ps, (c->npools + 1) * sizeof(*ps));
	if (!ps)
		goto out_oom;
	x->ps = ps;
	memset(&x->ps[c->npools], 0, sizeof(*ps));
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out_oom;
	p->name = strdup(name);
	p->file = strdup(file);
	p->line = line;
	if (!p->name || !p->file || conf_set_defaults(x, p, CF_POOL) < 0) {
		pool_free(p);
		goto out_oom;
	}
	c->pools[c->npools] = p;
	*index = c->npools++;
	x->nps = c->npools;
	return 0;

out_oom:
	x->oom = 1;
	return -1;
}

static struct fpmd_conf *load(const char *name, const char *text, int read_errno,
			      const struct conf_options *opt, const struct conf_io *io,
			      struct conf_diags *diags)
{
	struct conf_ctx x = { 0 };
	struct fpmd_conf *c;

	if (!opt)
		opt = &no_options;
	if (!io)
		io = &conf_io_default;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	x.c = c;
	x.opt = opt;
	x.io = io;
	x.diags = diags;
	c->file = strdup(name);
	c->prefix = strdup(opt->prefix ? opt->prefix : FPMD_DEFAULT_PREFIX);
	x.base_dir = opt->prefix ? strdup(opt->prefix) : conf_dirname(name);
	if (!c->file || !c->prefix || !x.base_dir || conf_set_defaults(&x, c, CF_GLOBAL) < 0)
		x.oom = 1;

	if (!x.oom && !text)
		conf_diag_add(&x, 1, NULL, 0, "cannot read '%s': %s", name,
			      read_errno ? strerror(read_errno) : "unknown error");
	if (!x.oom && text) {
		conf_read_text(&x, c->file, text, 0);
		if (!x.oom)
			conf_validate(&x);
	}

	free(x.ps);
	free(x.base_dir);
	if (x.oom) {
		conf_free(c);
		return NULL;
	}
	return c;
}

struct fpmd_conf *conf_load_string(const char *name, const char *text,
				   const struct conf_options *opt,
				   const struct conf_io *io, struct conf_diags *diags)
{
	return load(name, text ? text : "", 0, opt, io, diags);
}

struct fpmd_conf *conf_load(const char *path, const struct conf_options *opt,
			    const struct conf_io *io, struct conf_diags *diags)
{
	struct fpmd_conf *c;
	size_t len = 0;
	char *text;
	int err;

	if (!io)
		io = &conf_io_default;
	errno = 0;
	text = io->read(path, &len, io->ctx);
	err = errno;
	c = load(path, text, err, opt, io, diags);
	free(text);
	return c;
}
