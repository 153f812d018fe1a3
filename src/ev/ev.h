/*
 * A small epoll event loop: file descriptors, signals (signalfd) and
 * one-shot or periodic timers (all on one timerfd).  Nothing else.
 *
 * Ownership: the loop owns its epoll fd, its signalfd and its timerfd; it
 * never owns a watched fd (the caller closes those after ev_del).  A timer
 * takes no descriptor: ev_timer_new() fails only out of memory.
 * Callbacks run from ev_run() only.
 */
#ifndef FPMD_EV_H
#define FPMD_EV_H

#include <signal.h>
#include <stdint.h>

struct ev_loop;
struct ev_watch;

typedef void (*ev_fd_cb)(struct ev_loop *loop, int fd, uint32_t events, void *data);
typedef void (*ev_signal_cb)(struct ev_loop *loop, int signo, void *data);
typedef void (*ev_timer_cb)(struct ev_loop *loop, struct ev_watch *timer, void *data);
typedef void (*ev_idle_cb)(struct ev_loop *loop, void *data);

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* Watches fd for events (EPOLLIN, EPOLLOUT...).  Returns a handle or NULL. */
struct ev_watch *ev_fd_add(struct ev_loop *loop, int fd, uint32_t events, ev_fd_cb cb, void *data);
int  ev_fd_mod(struct ev_loop *loop, struct ev_watch *w, uint32_t events);
void ev_fd_del(struct ev_loop *loop, struct ev_watch *w);

/* Blocks the signals in set and delivers them through cb.  Call once. */
int ev_signals(struct ev_loop *loop, const sigset_t *set, ev_signal_cb cb, void *data);

/* Timers: created disarmed.  interval_ms 0 = one shot.  Due ones fire soonest first. */
struct ev_watch *ev_timer_new(struct ev_loop *loop, ev_timer_cb cb, void *data);
int  ev_timer_arm(struct ev_watch *t, unsigned first_ms, unsigned interval_ms);
void ev_timer_disarm(struct ev_watch *t);
int  ev_timer_armed(const struct ev_watch *t);
void ev_timer_free(struct ev_loop *loop, struct ev_watch *t);

/*
 * cb runs once after every batch of events, before the loop waits again
 * (redis ae's beforesleep): work that many events may ask for is done once.
 */
void ev_before_sleep(struct ev_loop *loop, ev_idle_cb cb, void *data);

/* Runs until ev_stop(). Returns 0, or -1 if epoll_wait fails. */
int  ev_run(struct ev_loop *loop);
void ev_stop(struct ev_loop *loop);

#endif
