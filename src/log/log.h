/*
 * Error log: php-fpm's line format so operators' parsers keep working:
 *   [23-Nov-2026 09:14:02] NOTICE: fpm is running, pid 1234
 *
 * The master is the only process that writes the error log.  Workers send
 * their messages up a pipe (log_set_pipe) and the master re-frames them, so a
 * compromised worker cannot forge a master line or break the file's framing.
 *
 * Owns: the log file descriptor (opened, reopened on USR1, closed at exit).
 */
#ifndef FPMD_LOG_H
#define FPMD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LL_DEBUG = 0, LL_NOTICE, LL_WARNING, LL_ERROR, LL_ALERT };

struct log_settings {
	const char *path;       /* file, "syslog", or NULL for stderr */
	const char *syslog_ident;
	const char *syslog_facility;
	enum log_level level;
	int limit;              /* max bytes of a message; 0 = unlimited */
	int force_stderr;       /* -O: also (or only) to stderr */
	int json;               /* log_format = json */
};

int  log_open(const struct log_settings *s);   /* 0 / -1 with errno */
/*
 * Opens a log file for appending, as root: in a directory anyone but root
 * may write (a pool's user owns it, say) a symlink is not followed and only
 * a regular file is taken, or that user could point the path at any file for
 * the master to write or hand to a worker.  In root's own directories a
 * symlink is followed as usual (/dev/stderr, /proc/self/fd/1).  The fd, or
 * -1 with errno (ELOOP: a symlink there; EINVAL: not a regular file).
 */
int  log_file_open(const char *path, int mode);
int  log_reopen(void);                         /* USR1 */
void log_close(void);
void log_set_level(enum log_level l);
/* While on, ERROR and ALERT lines are also written to stderr (a start in progress). */
void log_set_starting(int on);
enum log_level log_get_level(void);
/* In a worker: messages go to this pipe as "<digit>message\n" for the master. */
void log_set_pipe(int fd, const char *pool);
int  log_fd(void);                             /* the file fd, -1 if none */

void log_msg(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errno)". */
void log_sys(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level l, int err, const char *fmt, va_list ap);

/* Writes an already-built message (from a worker pipe) at level l; escapes controls. */
void log_raw(enum log_level l, const char *msg, size_t len);
/* The same with prefix before msg (a worker's line tagged with its pool by the master). */
void log_prefixed(enum log_level l, const char *prefix, const char *msg, size_t len);
/*
 * A worker's output (catch_workers_output): prefix "[pool P] child N said
 * into stderr: " or NULL when undecorated; suffix e.g. ", pipe is closed".
 * Lines longer than log_limit continue on the next line, as php-fpm's.
 */
void log_worker_output(const char *prefix, const char *msg, size_t len, const char *suffix);

/*
 * in as one line of a log: control bytes as \xHH (tab kept), the rest as
 * it is; always terminated, cut at cap.  Returns the length written.
 */
size_t log_escape(char *out, size_t cap, const char *in);

/*
 * Lines a client can cause at will (a protocol error, a 431, a read timeout:
 * 126,000 lines in 6 s from one looping client) are limited at their call
 * site: at most LOG_BURST a second.  log_burst_pass: 1 to log this one, with
 * note set to what to append (" (N more like it left out)" or ""), 0 to
 * leave it out.  One struct log_burst per call site and process.
 */
#define LOG_BURST 10
struct log_burst {
	uint64_t second;
	unsigned in_second, dropped;
};
int log_burst_pass(struct log_burst *b, char *note, size_t cap);
/* log_msg(l, fmt, ...) through a burst limit of its own call site; fmt takes the note last (%s). */
#define log_limited(l, fmt, ...) do { \
	static struct log_burst log_burst_; \
	char log_note_[64]; \
	if (log_burst_pass(&log_burst_, log_note_, sizeof(log_note_))) \
		log_msg(l, fmt, __VA_ARGS__, log_note_); \
} while (0)

/* Formats the php-fpm time stamp "23-Nov-2026 09:14:02" into buf (>= 32 bytes). */
void log_timestamp(char *buf, size_t cap);

const char *log_level_name(enum log_level l);

#define log_debug(...)   log_msg(LL_DEBUG, __VA_ARGS__)
#define log_notice(...)  log_msg(LL_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LL_WARNING, __VA_ARGS__)
#define log_error(...)   log_msg(LL_ERROR, __VA_ARGS__)
#define log_alert(...)   log_msg(LL_ALERT, __VA_ARGS__)

#endif
