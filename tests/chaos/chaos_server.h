/*
 * chaos_server.h - runs zerobus-local on FIXED ports so it can be killed and
 * restarted on the same endpoint (the library recovers only to the endpoint it
 * was created with). zl_start() always asks for --port 0, which would change the
 * port on every restart, so the chaos tools spawn the server themselves and fill
 * a zl_server struct to use the harness's query helpers (payloads, counters,
 * fault scripts).
 */
#ifndef CHAOS_SERVER_H
#define CHAOS_SERVER_H

#include "zl_harness.h"

typedef struct chaos_server {
  zl_server zl;          /* pid, ports, endpoint, http_url, db_path */
  char bin[512];         /* zerobus-local binary */
  char log_path[600];    /* stdout+stderr of every incarnation, appended */
  const char *extra[16]; /* extra flags (NULL-terminated), e.g. --chaos-seed */
  char extra_buf[16][64];
  int n_extra;
  int starts; /* incarnations started */
} chaos_server;

/* Picks two free loopback ports, a fresh database path and the binary
 * (ZEROBUS_LOCAL_BIN, else ZL_DEFAULT_BIN). 0 on success. */
int chaos_server_init(chaos_server *cs, const char *tag);
/* Replaces the extra flags (NULL-terminated list, copied). */
void chaos_server_set_flags(chaos_server *cs, const char *const *flags);
/* Starts an incarnation on the fixed ports and database; waits <= 10 s for the
 * ready line (retrying while the ports are still held). 0 on success. */
int chaos_server_start(chaos_server *cs);
/* SIGKILL + waitpid. */
void chaos_server_kill(chaos_server *cs);
/* SIGTERM + waitpid (graceful); returns the exit status or -1. */
int chaos_server_stop(chaos_server *cs);
/* Removes the database files and the log (when keep == 0). */
void chaos_server_cleanup(chaos_server *cs, int keep);

#endif
