/*
 * The default conf_io: the only part of src/conf that touches the file
 * system.  read() slurps a file; glob() expands an include pattern in
 * glob(3)'s sorted order.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

/* Configuration files are small; this bounds a mistaken include of a huge file. */
#define CONF_MAX_FILE_SIZE (16 * 1024 * 1024)

static char *io_read(const char *path, size_t *len, void *ctx)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int fd, saved;

	(void)ctx;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto out_close;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto out_close;
	}
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *p;

			if (cap >= CONF_MAX_FILE_SIZE) {
				errno = EFBIG;
				goto out_free;
			}
			cap = cap ? cap * 2 : 4096;
			p = realloc(buf, cap);
			if (!p)
				goto out_free;
			buf = p;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto out_free;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;

out_free:
	saved = errno;
	free(buf);
	errno = saved;
out_close:
	saved = errno;
	close(fd);
	errno = saved;
	return NULL;
}

/* Why glob() gave up on a directory (config loading is single-threaded). */
static int glob_errno;

static int on_glob_error(const char *path, int err)
{
	(void)path;
	glob_errno = err;
	return 1;
}

static int io_glob(const char *pattern, struct conf_str_list *out, void *ctx)
{
	glob_t g;
	int r;

	(void)ctx;
	glob_errno = 0;
	r = glob(pattern, GLOB_ERR, on_glob_error, &g);
	if (r == GLOB_NOMATCH) {
		globfree(&g);
		return 0;
	}
	if (r != 0) {
		globfree(&g);
		/* a missing or unreadable directory: its own errno (ENOENT, EACCES) */
		errno = r == GLOB_NOSPACE ? ENOMEM : glob_errno ? glob_errno : EIO;
		return -1;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char *copy;

		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 8;
			char **items = realloc(out->items, cap * sizeof(*items));

			if (!items)
				goto out_nomem;
			out->items = items;
			out->cap = cap;
		}
		copy = strdup(g.gl_pathv[i]);
		if (!copy)
			goto out_nomem;
		out->items[out->n++] = copy;
	}
	globfree(&g);
	return 0;

out_nomem:
	globfree(&g);
	conf_str_list_free(out);
	errno = ENOMEM;
	return -1;
}

const struct conf_io conf_io_default = { .read = io_read, .glob = io_glob, .ctx = NULL };
