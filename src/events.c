/*
 * events.c - the per-stream event queue and its three ways out: zerobus_stream_poll
 * (callbacks on the caller's thread), zerobus_stream_poll_events (an array, no
 * callbacks) and the optional dispatcher thread.
 *
 * Acks never take queue space: the engine only raises the "acked up to"
 * watermark, and delivery hands out the range (delivered_upto, acked_upto]. Error
 * ranges (one shared error object) and log lines go through a FIFO. Acks always
 * precede errors: errors are queued only when the stream stops acking (failure,
 * or close giving up), so delivering the ack range first keeps offsets in order.
 *
 * The wakeup fd is an eventfd, written once when the queue goes from empty to
 * pending and drained when a poll finds it empty. Callbacks run with no lock held.
 * zerobus_stream_wake() ends a poll's wait without an event (the eventfd is not
 * touched: it means "events pending").
 *
 * poll_events writes each event through a local zerobus_event copied into the
 * caller's element of `event_size` bytes (min of both sizes), so callers
 * compiled against an older or newer zerobus_event keep working.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

static void item_free(zb_event_item *it) {
  while (it) {
    zb_event_item *n = it->next;
    zerobus_error_destroy(it->error);
    free(it->message);
    free(it);
    it = n;
  }
}

void zb_events_init(zb_events *ev) {
  memset(ev, 0, sizeof *ev);
  pthread_mutex_init(&ev->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ev->cv, &ca);
  pthread_condattr_destroy(&ca);
  ev->acked_upto = -1;
  ev->delivered_upto = -1;
  ev->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void zb_events_destroy(zb_events *ev) {
  item_free(ev->head);
  item_free(ev->handed);
  ev->head = ev->tail = ev->handed = NULL;
  if (ev->efd >= 0) close(ev->efd);
  ev->efd = -1;
  pthread_cond_destroy(&ev->cv);
  pthread_mutex_destroy(&ev->mu);
}

static int pending_locked(const zb_events *ev) {
  return ev->acked_upto > ev->delivered_upto || ev->head != NULL;
}

/* Under ev->mu: something was added. */
static void notify_locked(zb_events *ev) {
  if (!ev->efd_armed && ev->efd >= 0) {
    uint64_t one = 1;
    ssize_t r = write(ev->efd, &one, sizeof one);
    (void)r;
    ev->efd_armed = 1;
  }
  if (ev->waiters) pthread_cond_broadcast(&ev->cv);
}

/* Under ev->mu: the queue was drained. */
static void disarm_locked(zb_events *ev) {
  if (ev->efd_armed && !pending_locked(ev)) {
    uint64_t v;
    ssize_t r = read(ev->efd, &v, sizeof v);
    (void)r;
    ev->efd_armed = 0;
  }
}

void zb_events_ack(zb_events *ev, int64_t upto) {
  pthread_mutex_lock(&ev->mu);
  if (upto > ev->acked_upto) {
    ev->acked_upto = upto;
    notify_locked(ev);
  }
  pthread_mutex_unlock(&ev->mu);
}

static void push(zb_events *ev, zb_event_item *it) {
  pthread_mutex_lock(&ev->mu);
  if (ev->tail)
    ev->tail->next = it;
  else
    ev->head = it;
  ev->tail = it;
  notify_locked(ev);
  pthread_mutex_unlock(&ev->mu);
}

void zb_events_error(zb_events *ev, int64_t first, int64_t last, const zerobus_error *err) {
  if (last < first) return;
  zb_event_item *it = calloc(1, sizeof *it);
  if (!it) return;
  it->kind = ZEROBUS_EVENT_ERROR;
  it->error = zerobus_error_clone(err);
  it->status = err ? err->code : ZEROBUS_ERR_INTERNAL;
  it->first = first;
  it->last = last;
  push(ev, it);
}

void zb_events_log_sink(void *ctx, int32_t level, const char *message) {
  zerobus_stream *s = ctx;
  zb_event_item *it = calloc(1, sizeof *it);
  if (!it) return;
  it->kind = ZEROBUS_EVENT_LOG;
  it->status = level;
  it->message = strdup(message ? message : "");
  push(&s->ev, it);
}

void zb_events_finish(zb_events *ev) {
  pthread_mutex_lock(&ev->mu);
  ev->finished = 1;
  pthread_cond_broadcast(&ev->cv);
  pthread_mutex_unlock(&ev->mu);
}

void zb_events_wake_all(zb_events *ev) {
  pthread_mutex_lock(&ev->mu);
  pthread_cond_broadcast(&ev->cv);
  pthread_mutex_unlock(&ev->mu);
}

static void deadline_ts(struct timespec *ts, int64_t at_ms) {
  ts->tv_sec = at_ms / 1000;
  ts->tv_nsec = (at_ms % 1000) * 1000000;
}

/* Under ev->mu: waits until something is pending, the timeout passes, the
 * stream is being destroyed, or zerobus_stream_wake() is called (a wake made
 * while nobody waited ends this wait at once). Consumes a pending wake.
 * timeout_ms < 0: forever. */
static void wait_pending_locked(zerobus_stream *s, int32_t timeout_ms) {
  zb_events *ev = &s->ev;
  int64_t until = timeout_ms < 0 ? -1 : zb_now_ms() + timeout_ms;
  uint64_t gen = ev->wake_gen;
  while (!pending_locked(ev) && !atomic_load(&s->destroying) && !ev->stop && !ev->finished &&
         !ev->wake_pending && ev->wake_gen == gen) {
    if (until >= 0) {
      int64_t now = zb_now_ms();
      if (now >= until) break;
      struct timespec ts;
      deadline_ts(&ts, until);
      ev->waiters++;
      pthread_cond_timedwait(&ev->cv, &ev->mu, &ts);
      ev->waiters--;
    } else {
      ev->waiters++;
      pthread_cond_wait(&ev->cv, &ev->mu);
      ev->waiters--;
    }
  }
  ev->wake_pending = 0;
}

ZEROBUS_API int32_t zerobus_stream_wake(zerobus_stream *s) {
  if (!s) return ZEROBUS_ERR_INVALID_ARGUMENT;
  if (!zb_stream_enter(s)) return ZEROBUS_ERR_STREAM_CLOSED;
  zb_events *ev = &s->ev;
  pthread_mutex_lock(&ev->mu);
  ev->wake_gen++;
  ev->wake_pending = 1;
  pthread_cond_broadcast(&ev->cv);
  pthread_mutex_unlock(&ev->mu);
  zb_stream_leave(s);
  return ZEROBUS_OK;
}

/* Under ev->mu: takes the pending ack range and FIFO items. */
static void take_locked(zb_events *ev, int64_t *ack_first, int64_t *ack_last,
                        zb_event_item **items) {
  *ack_first = *ack_last = -1;
  if (ev->acked_upto > ev->delivered_upto) {
    *ack_first = ev->delivered_upto + 1;
    *ack_last = ev->acked_upto;
    ev->delivered_upto = ev->acked_upto;
  }
  *items = ev->head;
  ev->head = ev->tail = NULL;
  disarm_locked(ev);
}

/* Dispatcher only: close() stopped it and its drain time is over. */
static int drain_over(zb_events *ev) {
  pthread_mutex_lock(&ev->mu);
  int over = ev->stop && ev->stop_deadline >= 0 && zb_now_ms() >= ev->stop_deadline;
  pthread_mutex_unlock(&ev->mu);
  return over;
}

/* Runs callbacks for what take_locked returned; frees the items. With
 * `dispatcher`, gives up (dropping the rest) once the drain time is over. */
static int32_t deliver(zerobus_stream *s, int64_t af, int64_t al, zb_event_item *items,
                       int dispatcher) {
  const zerobus_callbacks *cb = &s->cb;
  int32_t n = 0;
  if (af >= 0) {
    n++;
    if (cb->on_ack_range)
      cb->on_ack_range(cb->user_data, af, al);
    else if (cb->on_ack)
      for (int64_t o = af; o <= al && !(dispatcher && drain_over(&s->ev)); o++)
        cb->on_ack(cb->user_data, o);
  }
  for (zb_event_item *it = items; it; it = it->next) {
    if (dispatcher && drain_over(&s->ev)) break;
    n++;
    if (it->kind == ZEROBUS_EVENT_ERROR) {
      if (cb->on_error)
        for (int64_t o = it->first; o <= it->last && !(dispatcher && drain_over(&s->ev)); o++)
          cb->on_error(cb->user_data, o, it->error);
    } else if (it->kind == ZEROBUS_EVENT_LOG) {
      if (cb->on_log) cb->on_log(cb->user_data, it->status, it->message);
    }
  }
  item_free(items);
  return n;
}

ZEROBUS_API int32_t zerobus_stream_poll(zerobus_stream *s, int32_t timeout_ms) {
  if (!s) return -ZEROBUS_ERR_INVALID_ARGUMENT;
  if (!zb_stream_enter(s)) return -ZEROBUS_ERR_STREAM_CLOSED;
  zb_events *ev = &s->ev;
  if (ev->dispatch) {
    zb_stream_leave(s);
    return 0;
  }
  pthread_mutex_lock(&ev->mu);
  item_free(ev->handed);
  ev->handed = NULL;
  wait_pending_locked(s, timeout_ms);
  int64_t af, al;
  zb_event_item *items;
  take_locked(ev, &af, &al, &items);
  pthread_mutex_unlock(&ev->mu);
  int32_t n = deliver(s, af, al, items, 0);
  zb_stream_leave(s);
  return n;
}

/* The smallest event_size poll_events accepts: up to the end of `message`. */
#define ZB_EVENT_MIN_SIZE (offsetof(zerobus_event, message) + sizeof(const char *))

/* Element i of the caller's array of event_size-byte elements gets the part of
 * *e both sizes cover. */
static void put_event(zerobus_event *events, size_t event_size, size_t i, const zerobus_event *e) {
  memcpy((char *)events + i * event_size, e, event_size < sizeof *e ? event_size : sizeof *e);
}

ZEROBUS_API zerobus_status zerobus_stream_poll_events(zerobus_stream *s, zerobus_event *events,
                                                      size_t cap, size_t event_size,
                                                      int32_t timeout_ms, size_t *n_out,
                                                      zerobus_error **err) {
  if (err) *err = NULL;
  if (n_out) *n_out = 0;
  if (!s || !n_out || (!events && cap > 0))
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0,
                   "poll_events: stream, events and n_out must not be NULL");
  if (event_size < ZB_EVENT_MIN_SIZE)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0,
                   "poll_events: event_size %zu is smaller than zerobus_event up to its "
                   "message member (%zu bytes); pass sizeof(zerobus_event)",
                   event_size, (size_t)ZB_EVENT_MIN_SIZE);
  if (cap > SIZE_MAX / event_size)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "poll_events: cap * event_size overflows");
  if (zb_stream_enter_or_fail(s, err) != ZEROBUS_OK) return ZEROBUS_ERR_STREAM_CLOSED;
  zb_events *ev = &s->ev;
  if (ev->dispatch) {
    zb_stream_leave(s);
    return zb_fail(err, ZEROBUS_ERR_INVALID_STATE, 0,
                   "poll_events cannot be used on a stream with a dispatcher thread");
  }
  pthread_mutex_lock(&ev->mu);
  item_free(ev->handed);
  ev->handed = NULL;
  if (cap == 0) {
    pthread_mutex_unlock(&ev->mu);
    zb_stream_leave(s);
    return ZEROBUS_OK;
  }
  wait_pending_locked(s, timeout_ms);
  size_t n = 0;
  zerobus_event e;
  memset(&e, 0, sizeof e);
  if (ev->acked_upto > ev->delivered_upto) {
    e.kind = ZEROBUS_EVENT_ACK;
    e.status = 0;
    e.first = ev->delivered_upto + 1;
    e.last = ev->acked_upto;
    e.error = NULL;
    e.message = NULL;
    put_event(events, event_size, n, &e);
    ev->delivered_upto = ev->acked_upto;
    n++;
  }
  zb_event_item *handed_tail = NULL;
  while (n < cap && ev->head) {
    zb_event_item *it = ev->head;
    ev->head = it->next;
    if (!ev->head) ev->tail = NULL;
    it->next = NULL;
    e.kind = it->kind;
    e.status = it->status;
    e.first = it->kind == ZEROBUS_EVENT_ERROR ? it->first : -1;
    e.last = it->kind == ZEROBUS_EVENT_ERROR ? it->last : -1;
    e.error = it->error;
    e.message = it->kind == ZEROBUS_EVENT_ERROR ? zerobus_error_message(it->error) : it->message;
    put_event(events, event_size, n, &e);
    n++;
    if (handed_tail)
      handed_tail->next = it;
    else
      ev->handed = it;
    handed_tail = it;
  }
  disarm_locked(ev);
  pthread_mutex_unlock(&ev->mu);
  *n_out = n;
  zb_stream_leave(s);
  return ZEROBUS_OK;
}

ZEROBUS_API int32_t zerobus_stream_wakeup_fd(zerobus_stream *s) {
  if (!s) return -1;
  return s->ev.efd;
}

/* The dispatcher thread: its one job is to run the stream's callbacks, between
 * on_thread_start and on_thread_stop. */
static void *dispatcher_main(void *arg) {
  zerobus_stream *s = arg;
  zb_events *ev = &s->ev;
  if (s->cb.on_thread_start) s->cb.on_thread_start(s->cb.user_data, "zerobus-dispatch");
  pthread_mutex_lock(&ev->mu);
  for (;;) {
    while (!pending_locked(ev) && !ev->stop) {
      ev->waiters++;
      pthread_cond_wait(&ev->cv, &ev->mu);
      ev->waiters--;
    }
    if (ev->stop) {
      if (!pending_locked(ev)) break;
      if (ev->stop_deadline >= 0 && zb_now_ms() >= ev->stop_deadline) break;
    }
    int64_t af, al;
    zb_event_item *items;
    take_locked(ev, &af, &al, &items);
    ev->in_callback = 1;
    pthread_mutex_unlock(&ev->mu);
    deliver(s, af, al, items, 1);
    pthread_mutex_lock(&ev->mu);
    ev->in_callback = 0;
    if (ev->waiters) pthread_cond_broadcast(&ev->cv);
  }
  pthread_mutex_unlock(&ev->mu);
  if (s->cb.on_thread_stop) s->cb.on_thread_stop(s->cb.user_data);
  return NULL;
}

int zb_events_start_dispatcher(zerobus_stream *s) {
  zb_events *ev = &s->ev;
  ev->dispatch = 1;
  if (pthread_create(&ev->thread, NULL, dispatcher_main, s) != 0) return -1;
  ev->thread_started = 1;
  return 0;
}

void zb_events_stop_dispatcher(zerobus_stream *s, int64_t wait_ms) {
  zb_events *ev = &s->ev;
  pthread_mutex_lock(&ev->mu);
  if (!ev->thread_started) {
    pthread_mutex_unlock(&ev->mu);
    return;
  }
  if (!ev->stop) {
    ev->stop = 1;
    ev->stop_deadline = wait_ms < 0 ? -1 : zb_now_ms() + wait_ms;
  } else if (wait_ms == 0) {
    ev->stop_deadline = zb_now_ms();
  }
  pthread_cond_broadcast(&ev->cv);
  int self = pthread_equal(pthread_self(), ev->thread);
  pthread_mutex_unlock(&ev->mu);
  if (self) return; /* close() from a callback: the thread ends after it returns */
  /* Wake the dispatcher when the drain deadline passes while it waits. */
  pthread_join(ev->thread, NULL);
  pthread_mutex_lock(&ev->mu);
  ev->thread_started = 0;
  pthread_mutex_unlock(&ev->mu);
}
