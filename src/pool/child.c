/*
 * What a pool's child process does with its pool before it serves (pool.h):
 * its descriptor layout, and which zygote it comes from.  Run in the child,
 * after fork or clone, by the master's code and the zygotes' alike.
 */
#include "pool/pool.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "handlers/handler.h"

int pool_uses_shared_php(const struct pool *p)
{
	return p->handler && p->handler->prefork_start && p->handler->shared_start &&
	       p->conf->php_zygote == PHP_ZYGOTE_SHARED;
}

int pool_shares_zygote(const struct pool *p)
{
	return pool_uses_shared_php(p) && !p->handler->zygote_run;
}

int pool_app_zygote_from_shared(const struct pool *p)
{
	return pool_uses_shared_php(p) && p->handler->zygote_run;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

void pool_close_all_fds_but(int *keep, size_t n)
{
	qsort(keep, n, sizeof(*keep), cmp_int);
	unsigned from = 0;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < from)
			continue;
		if ((unsigned)keep[i] > from)
			close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	close_range(from, ~0U, 0);
}

void pool_child_fd_layout(struct pool *pools, struct pool *p, const int *want, int n, int tmp_from,
			  const int *keep, size_t nkeep)
{
	int tmp[8];
	for (int i = 0; i < n; i++) {
		tmp[i] = want[i] < 0 ? -1 : fcntl(want[i], F_DUPFD_CLOEXEC, tmp_from);
		if (want[i] >= 0 && tmp[i] < 0)
			_exit(70);
	}
	/*
	 * Only 1 and 2 are inherited by what a worker runs (a PHP shell_exec()
	 * writes into catch_workers_output, decorated with its pool; a CGI
	 * script gets pipes of its own).  The rest is the worker's alone:
	 * close-on-exec, or a program could accept() on the pool socket (0),
	 * write lines into the error log (3) or poke the master (4).
	 */
	for (int i = 0; i < n; i++) {
		if (tmp[i] < 0)
			close(i);
		else if ((i == 1 || i == 2 ? dup2(tmp[i], i) : dup3(tmp[i], i, O_CLOEXEC)) < 0)
			_exit(70);
	}
	int all[8 + 64];
	size_t na = 0;
	for (int i = 0; i < n; i++)
		all[na++] = i;
	for (size_t i = 0; i < nkeep && na < sizeof(all) / sizeof(all[0]); i++)
		if (keep[i] >= n)
			all[na++] = keep[i];
	pool_close_all_fds_but(all, na);
	/*
	 * Other pools' scoreboards are none of this worker's business: unmapped,
	 * their structs left alone (writing them would copy a page of the
	 * master's heap per pool into every worker).
	 */
	for (struct pool *o = pools; o; o = o->next)
		if (o != p)
			sb_unmap(&o->sb);
}

