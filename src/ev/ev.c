/*
 * epoll loop.  Signals and timers are file descriptors like any other, so
 * the master has exactly one place where it waits and one place where work
 * happens; no signal handler ever runs code.
 */
#include "ev/ev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum watch_kind { W_FD, W_SIGNAL, W_TIMER };

struct ev_watch {
	enum watch_kind kind;
	int fd;
	int armed;
	int dead;                 /* deleted while callbacks were running */
	union {
		ev_fd_cb fd_cb;
		ev_signal_cb sig_cb;
		ev_timer_cb timer_cb;
	} cb;
	void *data;
	struct ev_watch *next_dead;
};

struct ev_loop {
	int epfd;
	int stop;
	int running;
	struct ev_watch *signal;
	struct ev_watch *graveyard;  /* freed after the current batch of events */
	ev_idle_cb before_sleep;     /* after each batch, before waiting again */
	void *before_sleep_data;
};

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
	return loop;
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
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct ev_watch *w = watch_new(loop, W_TIMER, fd, EPOLLIN, data);
	if (!w) {
		close(fd);
		return NULL;
	}
	w->cb.timer_cb = cb;
	return w;
}

int ev_timer_arm(struct ev_watch *t, unsigned first_ms, unsigned interval_ms)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (first_ms == 0)
		first_ms = 1;       /* 0 would disarm */
	its.it_value.tv_sec = first_ms / 1000;
	its.it_value.tv_nsec = (long)(first_ms % 1000) * 1000000L;
	its.it_interval.tv_sec = interval_ms / 1000;
	its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	if (timerfd_settime(t->fd, 0, &its, NULL) < 0)
		return -1;
	t->armed = 1;
	return 0;
}

void ev_timer_disarm(struct ev_watch *t)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (t && t->armed) {
		timerfd_settime(t->fd, 0, &its, NULL);
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
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, t->fd, NULL);
	close(t->fd);
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
	case W_TIMER: {
		uint64_t expirations;
		if (read(w->fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
			break;
		struct itimerspec cur;
		if (timerfd_gettime(w->fd, &cur) == 0 && cur.it_interval.tv_sec == 0 &&
		    cur.it_interval.tv_nsec == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0)
			w->armed = 0;
		w->cb.timer_cb(loop, w, w->data);
		break;
	}
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
