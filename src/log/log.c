/*
 * Error log writer.  See log.h for the design: the master writes, workers
 * send lines up a pipe.
 */
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
	int fd;                 /* log file, -1 = none */
	int use_syslog;
	int to_stderr;
	int json;
	enum log_level level;
	int limit;
	char path[4096];
	int pipe_fd;            /* worker: messages go here */
	char pool[128];
	/* Lines the log file refused (a full disk, EIO): told once it takes lines again. */
	unsigned long lost;
	int lost_errno;
	/* Until the start is decided, errors also go to the terminal that started fpmd. */
	int starting;
} lg = { .fd = -1, .to_stderr = 1, .level = LL_NOTICE, .limit = 1024, .pipe_fd = -1 };

static const char *const level_names[] = {
	[LL_DEBUG] = "DEBUG", [LL_NOTICE] = "NOTICE", [LL_WARNING] = "WARNING",
	[LL_ERROR] = "ERROR", [LL_ALERT] = "ALERT",
};

const char *log_level_name(enum log_level l)
{
	if ((unsigned)l > LL_ALERT)
		return "UNKNOWN";
	return level_names[l];
}

static int facility_from_name(const char *name)
{
	static const struct { const char *n; int v; } tab[] = {
		{ "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV }, { "cron", LOG_CRON },
		{ "daemon", LOG_DAEMON }, { "ftp", LOG_FTP }, { "kern", LOG_KERN },
		{ "lpr", LOG_LPR }, { "mail", LOG_MAIL }, { "news", LOG_NEWS },
		{ "syslog", LOG_SYSLOG }, { "user", LOG_USER }, { "uucp", LOG_UUCP },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
		{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	if (name)
		for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
			if (strcasecmp(name, tab[i].n) == 0)
				return tab[i].v;
	return LOG_DAEMON;
}

/* Only root may add, remove or replace entries in the directory dfd. */
static int root_only(int dfd)
{
	struct stat st;
	return fstat(dfd, &st) == 0 && st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/*
 * The directory of path, opened component by component: a symlink is
 * followed only where it lies in a directory only root may write (a
 * root-owned /var/run -> /run), never in one a pool's user could write,
 * where it could be swapped in to point anywhere (the check and the use
 * are the same descriptors, so nothing can change in between).  *base: the
 * last component.  -1 with errno (ELOOP: a symlink where none is followed).
 */
static int open_log_dir(int start, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	*base = slash ? slash + 1 : path;
	char rest[8192];
	if (!slash)
		snprintf(rest, sizeof(rest), ".");
	else
		snprintf(rest, sizeof(rest), "%.*s", (int)(slash - path), path);
	/* a relative path from start (a directory already walked), or the working directory */
	int cur = path[0] == '/' ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) :
		  start >= 0 ? fcntl(start, F_DUPFD_CLOEXEC, 0) :
		  open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int hops = 0;
	char *p = rest;
	while (cur >= 0) {
		while (*p == '/')
			p++;
		if (!*p)
			return cur;
		char *end = strchr(p, '/');
		char name[NAME_MAX + 1];
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			break;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		int next = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next >= 0) {
			close(cur);
			cur = next;
			continue;
		}
		char target[PATH_MAX];
		ssize_t n = (errno == ELOOP || errno == ENOTDIR) ?
			    readlinkat(cur, name, target, sizeof(target) - 1) : -1;
		if (n < 0)
			break;
		if (!root_only(cur) || ++hops > 40) {
			errno = ELOOP;
			break;
		}
		target[n] = '\0';
		/* the link's target, then what was left of the path */
		char joined[sizeof(rest)];
		if (snprintf(joined, sizeof(joined), "%s/%s", target, p) >= (int)sizeof(joined)) {
			errno = ENAMETOOLONG;
			break;
		}
		memcpy(rest, joined, sizeof(rest));
		p = rest;
		if (target[0] == '/') {
			close(cur);
			cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
	}
	if (cur >= 0) {
		int e = errno;
		close(cur);
		errno = e;
	}
	return -1;
}

static int log_file_open_from(int start, const char *path, int mode, int depth)
{
	int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY;
	const char *base;
	int dfd = open_log_dir(start, path, &base);
	if (dfd < 0)
		return -1;
	/*
	 * The file itself a symlink in root's own directory: its target is
	 * walked the same way (it may lead through a pool user's directories);
	 * a target that is no path (/proc/self/fd/N of a pipe or a socket) is
	 * opened as it is.
	 */
	int roots = root_only(dfd);
	char target[PATH_MAX];
	ssize_t tl = roots ? readlinkat(dfd, base, target, sizeof(target) - 1) : -1;
	if (tl > 0) {
		target[tl] = '\0';
		if (target[0] == '/' || strchr(target, '/') || strcmp(target, ".") == 0 ||
		    strcmp(target, "..") == 0 || !strchr(target, ':')) {
			int fd = -1;
			if (depth < 40)
				fd = log_file_open_from(dfd, target, mode, depth + 1);
			else
				errno = ELOOP;
			int e = errno;
			close(dfd);
			errno = e;
			return fd;
		}
	}
	struct stat st;
	int fd;
	if (roots) {
		/* root's own directory: its entries are root's, a symlink there too */
		fd = openat(dfd, base, flags, (mode_t)mode);
	} else {
		/* O_NONBLOCK: a FIFO put there must not hang the master on open */
		fd = openat(dfd, base, flags | O_NOFOLLOW | O_NONBLOCK, (mode_t)mode);
		if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
			close(fd);
			fd = -1;
			errno = EINVAL;
		} else if (fd >= 0) {
			fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
		}
	}
	int e = errno;
	close(dfd);
	errno = e;
	return fd;
}

int log_file_open(const char *path, int mode)
{
	if (geteuid() != 0)
		return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, (mode_t)mode);
	return log_file_open_from(-1, path, mode, 0);
}

static int open_file(const char *path)
{
	return log_file_open(path, 0640);
}

int log_open(const struct log_settings *s)
{
	lg.level = s->level;
	lg.limit = s->limit;
	lg.json = s->json;
	lg.to_stderr = s->force_stderr || !s->path;
	lg.use_syslog = 0;
	lg.path[0] = '\0';
	if (s->path && strcmp(s->path, "syslog") == 0) {
		openlog(s->syslog_ident ? s->syslog_ident : "fpmd", LOG_PID | LOG_NDELAY,
			facility_from_name(s->syslog_facility));
		lg.use_syslog = 1;
		return 0;
	}
	if (s->path) {
		int fd = open_file(s->path);
		if (fd < 0)
			return -1;
		if (lg.fd >= 0)
			close(lg.fd);
		lg.fd = fd;
		snprintf(lg.path, sizeof(lg.path), "%s", s->path);
	}
	return 0;
}

/*
 * USR1: logrotate has moved the file away; open the path again and swap the
 * descriptor only once the new one is open, so no line is lost.
 */
int log_reopen(void)
{
	if (lg.use_syslog || lg.path[0] == '\0')
		return 0;
	int fd = open_file(lg.path);
	if (fd < 0)
		return -1;
	if (lg.fd >= 0)
		close(lg.fd);
	lg.fd = fd;
	return 0;
}

void log_close(void)
{
	if (lg.fd >= 0)
		close(lg.fd);
	lg.fd = -1;
	if (lg.use_syslog)
		closelog();
	lg.use_syslog = 0;
}

void log_set_starting(int on) { lg.starting = on; }
void log_set_level(enum log_level l) { lg.level = l; }
enum log_level log_get_level(void) { return lg.level; }
int log_fd(void) { return lg.fd; }

void log_set_pipe(int fd, const char *pool)
{
	lg.pipe_fd = fd;
	snprintf(lg.pool, sizeof(lg.pool), "%s", pool ? pool : "");
	/*
	 * The worker no longer owns the file: the master does.  Forget the
	 * descriptor, never close it: the worker's fd layout (worker.h) already
	 * closed the master's log file, and its number has been reused — for the
	 * log pipe itself when the file was fd 3, which silenced every worker's
	 * log line whenever error_log was a file.
	 */
	lg.fd = -1;
	lg.use_syslog = 0;
}

void log_timestamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(buf, cap, "%d-%b-%Y %H:%M:%S", &tm);
}

/* Returns 0, or -1 if the line did not go out whole. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;  /* a full disk must not stop the server */
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void log_worker_output_escaped(const char *prefix, const char *msg, size_t len,
				      const char *suffix);

/*
 * The length of the well-formed UTF-8 sequence at s (at most n bytes), 0 when
 * there is none (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF).
 */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/*
 * How many bytes at s (n left, s[0] >= 0x80) a terminal may take for a C1
 * control, to be written as \xNN: U+0080..U+009F in UTF-8 (CSI is U+009B),
 * or a lone 0x80..0x9F (an 8-bit terminal's C1).  0: a sequence to keep,
 * whose length *keep gets (1 for a lone byte past 0x9F, as it came).
 */
static size_t c1_control(const unsigned char *s, size_t n, size_t *keep)
{
	size_t seq = utf8_sequence(s, n);
	if (seq == 2 && s[0] == 0xc2 && s[1] <= 0x9f)
		return 2;
	if (seq) {
		*keep = seq;
		return 0;
	}
	if (s[0] <= 0x9f)
		return 1;
	*keep = 1;
	return 0;
}

/*
 * Copies msg into out, escaping what would break a one-line record.  A JSON
 * record must be UTF-8 (RFC 8259 §8.1): a byte that does not start a
 * well-formed sequence is written as U+FFFD, as the status page does.
 */
static size_t escape_into(char *out, size_t cap, const char *msg, size_t len, int json)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 7 < cap; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (json && c >= 0x80) {
			size_t n = utf8_sequence((const unsigned char *)msg + i, len - i);
			if (!n) {
				o += (size_t)snprintf(out + o, cap - o, "\\ufffd");
				continue;
			}
			memcpy(out + o, msg + i, n);
			o += n;
			i += n - 1;
			continue;
		}
		if (!json && c >= 0x80) {
			size_t keep = 0, ctl = c1_control((const unsigned char *)msg + i, len - i, &keep);
			for (size_t k = 0; k < ctl && o + 5 < cap; k++)
				o += (size_t)snprintf(out + o, cap - o, "\\x%02x", (unsigned char)msg[i + k]);
			if (ctl) {
				i += ctl - 1;
				continue;
			}
			if (o + keep + 1 >= cap)
				break;
			memcpy(out + o, msg + i, keep);
			o += keep;
			i += keep - 1;
			continue;
		}
		if (json && (c == '"' || c == '\\')) {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			if (c == '\t' && !json) {
				out[o++] = '\t';
				continue;
			}
			o += (size_t)snprintf(out + o, cap - o, json ? "\\u%04x" : "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

int log_burst_pass(struct log_burst *b, char *note, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t sec = (uint64_t)ts.tv_sec;
	if (sec != b->second) {
		b->second = sec;
		b->in_second = 0;
	}
	if (b->in_second >= LOG_BURST) {
		b->dropped++;
		return 0;
	}
	b->in_second++;
	if (b->dropped)
		snprintf(note, cap, " (%u more like it left out)", b->dropped);
	else if (cap)
		note[0] = '\0';
	b->dropped = 0;
	return 1;
}

size_t log_escape(char *out, size_t cap, const char *in)
{
	if (!cap)
		return 0;
	size_t o = escape_into(out, cap, in, strlen(in), 0);
	out[o] = '\0';
	return o;
}

static void emit(enum log_level l, const char *msg, size_t len)
{
	static const int prio[] = { LOG_DEBUG, LOG_NOTICE, LOG_WARNING, LOG_ERR, LOG_ALERT };
	char stackbuf[8192];
	char *line = stackbuf;
	size_t cap = sizeof(stackbuf);
	size_t need = len * 6 + 128;

	if (lg.pipe_fd >= 0) {
		/* Worker: "<level digit><message>\n"; the master frames it. */
		if (need > cap && (line = malloc(need)) != NULL)
			cap = need;
		else if (need > cap)
			line = stackbuf;
		line[0] = (char)('0' + l);
		size_t o = 1 + escape_into(line + 1, cap - 2, msg, len, 0);
		line[o++] = '\n';
		write_all(lg.pipe_fd, line, o);
		if (line != stackbuf)
			free(line);
		return;
	}
	/* php-fpm's way: a failing start is told on the terminal as well as in the log */
	int to_stderr = lg.to_stderr || (lg.starting && l >= LL_ERROR);
	if (lg.use_syslog) {
		syslog(prio[l], "%s: %.*s", log_level_name(l), (int)len, msg);
		if (!to_stderr)
			return;
	}
	if (need > cap) {
		char *big = malloc(need);
		if (big) {
			line = big;
			cap = need;
		}
	}
	char ts[64];
	log_timestamp(ts, sizeof(ts));
	size_t o;
	if (lg.json) {
		o = (size_t)snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"", ts,
				     log_level_name(l));
		o += escape_into(line + o, cap - o - 4, msg, len, 1);
		line[o++] = '"';
		line[o++] = '}';
	} else {
		o = (size_t)snprintf(line, cap, "[%s] %s: ", ts, log_level_name(l));
		o += escape_into(line + o, cap - o - 2, msg, len, 0);
	}
	line[o++] = '\n';
	int lost_now = 0;
	if (lg.fd >= 0 && write_all(lg.fd, line, o) < 0) {
		lg.lost++;
		lg.lost_errno = errno;
		lost_now = 1;
	}
	if (to_stderr && lg.fd != STDERR_FILENO)
		write_all(STDERR_FILENO, line, o);
	if (line != stackbuf)
		free(line);
	/*
	 * The file takes lines again (space freed, or USR1 reopened it): say how
	 * many it refused, so a gap in the log is never silent.
	 */
	if (!lost_now && lg.lost && lg.fd >= 0) {
		unsigned long n = lg.lost;
		int e = lg.lost_errno;
		lg.lost = 0;
		log_msg(LL_WARNING, "%lu error log line(s) lost: write() failed: %s (%d)", n,
			strerror(e), e);
	}
}

void log_vmsg(enum log_level l, int err, const char *fmt, va_list ap)
{
	char buf[8192];
	if (l < lg.level)
		return;
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	if (err)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, ": %s (%d)", strerror(err), err);
	int cut = (size_t)n >= sizeof(buf) || len >= sizeof(buf);
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	if (lg.limit > 0 && len > (size_t)lg.limit) {
		len = (size_t)lg.limit;
		cut = 1;
	}
	/* a line cut at log_limit says so, as php-fpm's ("...") */
	if (cut && len > 3)
		memcpy(buf + len - 3, "...", 3);
	emit(l, buf, len);
}

void log_msg(enum log_level l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, 0, fmt, ap);
	va_end(ap);
}

void log_sys(enum log_level l, const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, err, fmt, ap);
	va_end(ap);
	errno = err;
}

/* One output line of the log file (or stderr), written as is. */
static void write_line(const char *line, size_t len)
{
	if (lg.fd >= 0)
		write_all(lg.fd, line, len);
	if (lg.to_stderr && lg.fd != STDERR_FILENO)
		write_all(STDERR_FILENO, line, len);
}

/*
 * A byte a terminal acts on beyond printing: backspace, vertical moves,
 * carriage return, escape, delete, the bell, SO/SI (a switch of character
 * set garbles every later line), and the start of a C1 control (c1_control).
 */
static int moves_cursor(unsigned char c)
{
	return c == '\b' || c == '\v' || c == '\f' || c == '\r' || c == 0x1b || c == 0x7f ||
	       c == 0x07 || c == 0x0e || c == 0x0f || c >= 0x80;
}

void log_worker_output(const char *prefix, const char *msg, size_t len, const char *suffix)
{
	/*
	 * What a worker (or any program it runs) writes moves the cursor of a
	 * terminal showing the log no more: a carriage return, a backspace, a
	 * vertical move or an escape sequence could make it read as another
	 * pool's or the master's line.  Those are written as \xNN; every other
	 * byte as it came, as php-fpm writes it (its own tests expect a NUL
	 * there).  A CR ending the line is a CRLF writer's: dropped.
	 */
	if (len && msg[len - 1] == '\r')
		len--;
	/* most lines have none of those: written as they are, not copied */
	size_t plain = 0;
	while (plain < len && !moves_cursor((unsigned char)msg[plain]))
		plain++;
	if (plain == len) {
		log_worker_output_escaped(prefix, msg, len, suffix);
		return;
	}
	char stackbuf[4096];
	char *esc = len * 4 + 1 <= sizeof(stackbuf) ? stackbuf : malloc(len * 4 + 1);
	if (!esc)
		return;
	/* the clean prefix as it is, the rest escaped where it must be */
	memcpy(esc, msg, plain);
	size_t o = plain;
	for (size_t i = plain; i < len; i++) {
		unsigned char c = (unsigned char)msg[i];
		size_t keep = 1, ctl = c >= 0x80 ? c1_control((const unsigned char *)msg + i, len - i, &keep)
						  : (size_t)moves_cursor(c);
		for (size_t k = 0; k < ctl; k++)
			o += (size_t)snprintf(esc + o, 5, "\\x%02x", (unsigned char)msg[i + k]);
		if (!ctl) {
			memcpy(esc + o, msg + i, keep);
			o += keep;
		}
		i += (ctl ? ctl : keep) - 1;
	}
	log_worker_output_escaped(prefix, esc, o, suffix);
	if (esc != stackbuf)
		free(esc);
}

static void log_worker_output_escaped(const char *prefix, const char *msg, size_t len,
				      const char *suffix)
{
	if (lg.json || lg.use_syslog || lg.pipe_fd >= 0 || LL_WARNING < lg.level) {
		/* one record: these formats have no line length to respect */
		size_t pl = prefix ? strlen(prefix) : 0, sl = suffix ? strlen(suffix) : 0;
		char *all = malloc(pl + len + sl + 3);
		if (!all)
			return;
		size_t o = 0;
		if (prefix) {
			memcpy(all, prefix, pl);
			o = pl;
			all[o++] = '"';
		}
		memcpy(all + o, msg, len);
		o += len;
		if (prefix)
			all[o++] = '"';
		if (sl)
			memcpy(all + o, suffix, sl);
		log_raw(LL_WARNING, all, o + sl);
		free(all);
		return;
	}
	/*
	 * php-fpm's shape: every line at most log_limit bytes, timestamp and
	 * prefix included; a longer message continues on the next line, each
	 * part in its own quotes.  Undecorated output (no prefix) is cut the
	 * same way, without time or quotes.
	 */
	char head[256];
	size_t hl = 0;
	if (prefix) {
		char ts[64];
		log_timestamp(ts, sizeof(ts));
		int n = snprintf(head, sizeof(head), "[%s] WARNING: %s\"", ts, prefix);
		hl = n < 0 ? 0 : (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1;
	}
	size_t close_q = prefix ? 1 : 0;
	/* php-fpm's limit counts the line's newline too */
	size_t limit = lg.limit > 1 ? (size_t)lg.limit - 1 : 0;
	size_t room = limit > hl + close_q ? limit - hl - close_q : 0;
	if (!limit || !room)
		room = len ? len : 1;
	size_t sl = suffix ? strlen(suffix) : 0;
	char *line = malloc(hl + room + close_q + sl + 2);
	if (!line)
		return;
	size_t off = 0;
	do {
		size_t piece = len - off < room ? len - off : room;
		size_t o = hl;
		memcpy(line, head, hl);
		memcpy(line + o, msg + off, piece);
		o += piece;
		if (close_q)
			line[o++] = '"';
		off += piece;
		size_t rest_sl = 0;
		if (off == len && sl) {
			/* the suffix (", pipe is closed") as far as the limit allows, the rest below */
			size_t fit = limit && o + sl > limit ? (limit > o ? limit - o : 0) : sl;
			memcpy(line + o, suffix, fit);
			o += fit;
			rest_sl = sl - fit;
		}
		line[o++] = '\n';
		write_line(line, o);
		if (rest_sl) {
			size_t h = hl > 0 ? hl - 1 : 0;       /* the prefix without its opening quote */
			memcpy(line, head, h);
			memcpy(line + h, suffix + (sl - rest_sl), rest_sl);
			line[h + rest_sl] = '\n';
			write_line(line, h + rest_sl + 1);
		}
	} while (off < len);
	free(line);
}

void log_prefixed(enum log_level l, const char *prefix, const char *msg, size_t len)
{
	if (l < lg.level)
		return;
	size_t pl = strlen(prefix);
	char stackbuf[4096];
	char *buf = pl + len <= sizeof(stackbuf) ? stackbuf : malloc(pl + len);
	if (!buf)
		return;
	memcpy(buf, prefix, pl);
	memcpy(buf + pl, msg, len);
	emit(l, buf, pl + len);
	if (buf != stackbuf)
		free(buf);
}

void log_raw(enum log_level l, const char *msg, size_t len)
{
	if (l < lg.level)
		return;
	emit(l, msg, len);
}
