/*
 * epoll loop.  Signals and timers come through file descriptors like any
 * other, so the master has exactly one place where it waits and one place
 * where work happens; no signal handler ever runs code.  The timers share
 * one timerfd, armed for the soonest of them (a min-heap): creating or
 * arming a timer needs no descriptor, so a master short of descriptors
 * still keeps every retry it schedules, and hundreds of pools cost one fd.
 */
#include "ev/ev.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum watch_kind { W_FD, W_SIGNAL, W_TIMER, W_TIMERFD };

struct ev_watch {
	enum watch_kind kind;
	int fd;                   /* -1 for a timer */
	int armed;
	int dead;                 /* deleted while callbacks were running */
	union {
		ev_fd_cb fd_cb;
		ev_signal_cb sig_cb;
		ev_timer_cb timer_cb;
	} cb;
	void *data;
	struct ev_watch *next_dead;
	/* a timer: */
	struct ev_loop *loop;
	uint64_t due_ns;          /* CLOCK_MONOTONIC */
	uint64_t interval_ns;     /* 0: one shot */
	size_t heap_at;           /* its index in loop->heap while armed */
};

struct ev_loop {
	int epfd;
	int stop;
	int running;
	struct ev_watch *signal;
	struct ev_watch *graveyard;  /* freed after the current batch of events */
	ev_idle_cb before_sleep;     /* after each batch, before waiting again */
	void *before_sleep_data;
	/* the armed timers, soonest first; the one timerfd is set for heap[0] */
	struct ev_watch *timerfd;
	struct ev_watch **heap;
	size_t heap_n, heap_cap;
	uint64_t timerfd_due_ns;     /* what the timerfd is set for; 0: disarmed */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct ev_watch *watch_new(struct ev_loop *loop, enum watch_kind kind, int fd,
				  uint32_t events, void *data);

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	loop->timerfd = tfd < 0 ? NULL : watch_new(loop, W_TIMERFD, tfd, EPOLLIN, NULL);
	if (!loop->timerfd) {
		if (tfd >= 0)
			close(tfd);
		close(loop->epfd);
		free(loop);
		return NULL;
	}
	return loop;
}

/* --- the timers' heap -------------------------------------------------------- */

static int sooner(const struct ev_watch *a, const struct ev_watch *b)
{
	return a->due_ns < b->due_ns;
}

static void heap_set(struct ev_loop *loop, size_t i, struct ev_watch *t)
{
	loop->heap[i] = t;
	t->heap_at = i;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
	struct ev_watch *t = loop->heap[i];
	while (i > 0 && sooner(t, loop->heap[(i - 1) / 2])) {
		heap_set(loop, i, loop->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct ev_loop *loop, size_t i)
{
	struct ev_watch *t = loop->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= loop->heap_n)
			break;
		if (c + 1 < loop->heap_n && sooner(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!sooner(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static int heap_push(struct ev_loop *loop, struct ev_watch *t)
{
	if (loop->heap_n == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		struct ev_watch **h = realloc(loop->heap, cap * sizeof(*h));
		if (!h)
			return -1;
		loop->heap = h;
		loop->heap_cap = cap;
	}
	heap_set(loop, loop->heap_n++, t);
	heap_up(loop, t->heap_at);
	return 0;
}

static void heap_remove(struct ev_loop *loop, struct ev_watch *t)
{
	size_t i = t->heap_at;
	struct ev_watch *last = loop->heap[--loop->heap_n];
	if (i == loop->heap_n)
		return;
	heap_set(loop, i, last);
	heap_down(loop, i);
	heap_up(loop, last->heap_at);
}

/* The timerfd set for the soonest armed timer, or disarmed: before each wait. */
static void timerfd_sync(struct ev_loop *loop)
{
	uint64_t due = loop->heap_n ? loop->heap[0]->due_ns : 0;
	if (due == loop->timerfd_due_ns)
		return;
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(due / 1000000000u);
	its.it_value.tv_nsec = (long)(due % 1000000000u);
	if (timerfd_settime(loop->timerfd->fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		loop->timerfd_due_ns = due;
}

/* Every timer due by now, soonest first; a periodic one is armed again before its callback. */
static void timers_fire(struct ev_loop *loop)
{
	uint64_t expirations;
	if (read(loop->timerfd->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	loop->timerfd_due_ns = 0;       /* fired, or about to be set again */
	uint64_t now = now_ns();
	while (loop->heap_n && loop->heap[0]->due_ns <= now && !loop->stop) {
		struct ev_watch *t = loop->heap[0];
		heap_remove(loop, t);
		if (t->interval_ns) {
			t->due_ns += t->interval_ns;
			if (t->due_ns <= now)
				t->due_ns = now + t->interval_ns;
			if (heap_push(loop, t) < 0)
				t->armed = 0;
		} else {
			t->armed = 0;
		}
		t->cb.timer_cb(loop, t, t->data);
	}
}

static void bury(struct ev_loop *loop, struct ev_watch *w)
{
	w->dead = 1;
	if (loop->running) {
		w->next_dead = loop->graveyard;
		loop->graveyard = w;
	} else {
		free(w);
	}
}

static void empty_graveyard(struct ev_loop *loop)
{
	while (loop->graveyard) {
		struct ev_watch *w = loop->graveyard;
		loop->graveyard = w->next_dead;
		free(w);
	}
}

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	if (loop->signal) {
		close(loop->signal->fd);
		free(loop->signal);
	}
	empty_graveyard(loop);
	if (loop->timerfd) {
		close(loop->timerfd->fd);
		free(loop->timerfd);
	}
	free(loop->heap);
	close(loop->epfd);
	free(loop);
}

static struct ev_watch *watch_new(struct ev_loop *loop, enum watch_kind kind, int fd,
				  uint32_t events, void *data)
{
	struct ev_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->kind = kind;
	w->fd = fd;
	w->data = data;
	struct epoll_event ee = { .events = events, .data.ptr = w };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
		int e = errno;
		free(w);
		errno = e;
		return NULL;
	}
	return w;
}

struct ev_watch *ev_fd_add(struct ev_loop *loop, int fd, uint32_t events, ev_fd_cb cb, void *data)
{
	struct ev_watch *w = watch_new(loop, W_FD, fd, events, data);
	if (w)
		w->cb.fd_cb = cb;
	return w;
}

int ev_fd_mod(struct ev_loop *loop, struct ev_watch *w, uint32_t events)
{
	struct epoll_event ee = { .events = events, .data.ptr = w };
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ee);
}

void ev_fd_del(struct ev_loop *loop, struct ev_watch *w)
{
	if (!w)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	bury(loop, w);
}

int ev_signals(struct ev_loop *loop, const sigset_t *set, ev_signal_cb cb, void *data)
{
	if (sigprocmask(SIG_BLOCK, set, NULL) < 0)
		return -1;
	int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ev_watch *w = watch_new(loop, W_SIGNAL, fd, EPOLLIN, data);
	if (!w) {
		close(fd);
		return -1;
	}
	w->cb.sig_cb = cb;
	loop->signal = w;
	return 0;
}

struct ev_watch *ev_timer_new(struct ev_loop *loop, ev_timer_cb cb, void *data)
{
	struct ev_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->kind = W_TIMER;
	w->fd = -1;
	w->loop = loop;
	w->data = data;
	w->cb.timer_cb = cb;
	return w;
}

int ev_timer_arm(struct ev_watch *t, unsigned first_ms, unsigned interval_ms)
{
	if (first_ms == 0)
		first_ms = 1;
	if (t->armed)
		heap_remove(t->loop, t);
	t->armed = 0;
	t->due_ns = now_ns() + (uint64_t)first_ms * 1000000u;
	t->interval_ns = (uint64_t)interval_ms * 1000000u;
	if (heap_push(t->loop, t) < 0)
		return -1;
	t->armed = 1;
	return 0;
}

void ev_timer_disarm(struct ev_watch *t)
{
	if (t && t->armed) {
		heap_remove(t->loop, t);
		t->armed = 0;
	}
}

int ev_timer_armed(const struct ev_watch *t)
{
	return t && t->armed;
}

void ev_timer_free(struct ev_loop *loop, struct ev_watch *t)
{
	if (!t)
		return;
	ev_timer_disarm(t);
	bury(loop, t);
}

static void dispatch(struct ev_loop *loop, struct ev_watch *w, uint32_t events)
{
	if (w->dead)
		return;
	switch (w->kind) {
	case W_FD:
		w->cb.fd_cb(loop, w->fd, events, w->data);
		break;
	case W_SIGNAL: {
		struct signalfd_siginfo si;
		while (!w->dead && read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			w->cb.sig_cb(loop, (int)si.ssi_signo, w->data);
		break;
	}
	case W_TIMER:
		break;                /* fired through the timerfd */
	case W_TIMERFD:
		timers_fire(loop);
		break;
	}
}

int ev_run(struct ev_loop *loop)
{
	struct epoll_event events[64];
	loop->stop = 0;
	while (!loop->stop) {
		if (loop->before_sleep) {
			loop->running = 1;
			loop->before_sleep(loop, loop->before_sleep_data);
			loop->running = 0;
			empty_graveyard(loop);
			if (loop->stop)
				break;
		}
		timerfd_sync(loop);
		int n = epoll_wait(loop->epfd, events, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		loop->running = 1;
		for (int i = 0; i < n && !loop->stop; i++)
			dispatch(loop, events[i].data.ptr, events[i].events);
		loop->running = 0;
		empty_graveyard(loop);
	}
	return 0;
}

void ev_before_sleep(struct ev_loop *loop, ev_idle_cb cb, void *data)
{
	loop->before_sleep = cb;
	loop->before_sleep_data = data;
}

void ev_stop(struct ev_loop *loop)
{
	loop->stop = 1;
}
