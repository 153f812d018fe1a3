/*
 * The slowlog's PHP frames of a stuck php worker, read from its memory
 * (see php/php_trace.h).  process_vm_readv copies; a pointer from the worker
 * is only ever an address to ask for, and a failed or odd read ends the walk.
 */
#include "php/php_trace.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

static int peek(pid_t pid, uint64_t addr, void *out, size_t len)
{
	if (addr < 4096)
		return -1;
	struct iovec local = { .iov_base = out, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int peek_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return peek(pid, addr, v, sizeof(*v));
}

/* A NUL-terminated string of at most cap - 1 bytes; printable bytes only. */
static void peek_str(pid_t pid, uint64_t addr, char *out, size_t cap)
{
	out[0] = '\0';
	size_t got = 0;
	while (got < cap - 1) {
		size_t chunk = cap - 1 - got < 64 ? cap - 1 - got : 64;
		if (peek(pid, addr + got, out + got, chunk) < 0)
			break;
		size_t i;
		for (i = 0; i < chunk && out[got + i]; i++)
			if ((unsigned char)out[got + i] < 0x20 || out[got + i] == 0x7f)
				out[got + i] = '?';
		got += i;
		if (i < chunk)
			break;
	}
	out[got] = '\0';
}

const char *php_trace_powered_by(const void *info, size_t len)
{
	static char line[sizeof(((struct php_trace_layout *)0)->powered_by)];
	struct php_trace_layout l;
	if (len != sizeof(l))
		return "";
	memcpy(&l, info, sizeof(l));
	size_t n = strnlen(l.powered_by, sizeof(l.powered_by));
	if (l.magic != PHP_TRACE_MAGIC || n == sizeof(l.powered_by) || n < 16 ||
	    strncmp(l.powered_by, "X-Powered-By: ", 14) != 0 || strcmp(l.powered_by + n - 2, "\r\n") != 0)
		return "";
	for (size_t i = 0; i < n - 2; i++)
		if ((unsigned char)l.powered_by[i] < 0x20 || (unsigned char)l.powered_by[i] > 0x7e)
			return "";
	memcpy(line, l.powered_by, n + 1);
	return line;
}

int php_trace_of(pid_t pid, const struct php_trace_layout *l, int depth, char *buf, size_t cap)
{
	if (!l || l->magic != PHP_TRACE_MAGIC) {
		errno = EINVAL;
		return -1;
	}
	size_t n = strlen(buf);
	uint64_t ex;
	if (peek_u64(pid, l->current_execute_data, &ex) < 0)
		return -1;
	int frames = 0;
	char name[256], file[1024];
	while (ex && frames < depth && n + 64 < cap) {
		uint64_t fn = 0, fname = 0;
		if (peek_u64(pid, ex + l->ex_func, &fn) < 0)
			break;
		if (fn && peek_u64(pid, fn + l->fn_name, &fname) == 0 && fname) {
			peek_str(pid, fname + l->str_val, name, sizeof(name));
		} else if (fn) {
			uint32_t info = 0;
			if (peek(pid, ex + l->ex_call_info, &info, sizeof(info)) < 0)
				break;
			if ((info & l->call_kind_mask) == l->call_top_code)
				break;          /* the script's own top level: php-fpm stops here */
			snprintf(name, sizeof(name), "[INCLUDE_OR_EVAL]");
		} else {
			snprintf(name, sizeof(name), "???");
		}
		/* The file and line: of the nearest caller frame running user code. */
		uint64_t prev = 0;
		if (peek_u64(pid, ex + l->ex_prev, &prev) < 0)
			prev = 0;
		file[0] = '\0';
		uint32_t lineno = 0;
		uint64_t p = prev;
		for (int hops = 0; p && hops < 64; hops++) {
			uint64_t pf = 0, opline = 0, filename = 0;
			uint8_t type = 0;
			if (peek_u64(pid, p + l->ex_func, &pf) < 0 || !pf ||
			    peek(pid, pf + l->fn_type, &type, 1) < 0)
				break;
			if ((type & 1) == 0) {          /* ZEND_USER_CODE */
				if (peek_u64(pid, pf + l->op_filename, &filename) == 0 && filename)
					peek_str(pid, filename + l->str_val, file, sizeof(file));
				if (peek_u64(pid, p + l->ex_opline, &opline) == 0 && opline)
					peek(pid, opline + l->op_lineno, &lineno, sizeof(lineno));
				break;
			}
			if (peek_u64(pid, p + l->ex_prev, &p) < 0)
				break;
		}
		int w = snprintf(buf + n, cap - n, "[0x%016llx] %s() %s:%u\n", (unsigned long long)ex,
				 name, file[0] ? file : "unknown", lineno);
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
		frames++;
		ex = prev;
	}
	return frames;
}
