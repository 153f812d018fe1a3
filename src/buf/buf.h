/*
 * A growable byte buffer, always NUL-terminated, for the pure code that
 * renders text (status pages, access log lines, configuration dumps).
 *
 * Ownership: the struct is the caller's (zero it to start); p is the
 * buffer's until buf_take() hands it over or buf_free() releases it.  Out
 * of memory is sticky: every later write is dropped and oom stays set, so a
 * renderer writes on and checks once at the end.
 */
#ifndef FPMD_BUF_H
#define FPMD_BUF_H

#include <stddef.h>

struct buf {
	char *p;        /* NULL until the first write */
	size_t len;     /* bytes written, not counting the NUL */
	size_t cap;
	int oom;
};

void buf_put(struct buf *b, const void *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text, "" when nothing was written; NULL (and the buffer freed) after out of memory. */
char *buf_take(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif
