/* chaos_server.c - zerobus-local on fixed ports, killable and restartable. */
#include "chaos_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int chaos_server_init(chaos_server *cs, const char *tag) {
  memset(cs, 0, sizeof *cs);
  const char *bin = getenv("ZEROBUS_LOCAL_BIN");
#ifdef ZL_DEFAULT_BIN
  if (!bin || !*bin) bin = ZL_DEFAULT_BIN;
#endif
  if (!bin || !*bin) {
    fprintf(stderr, "chaos: set ZEROBUS_LOCAL_BIN\n");
    return -1;
  }
  snprintf(cs->bin, sizeof cs->bin, "%s", bin);
  int gp = free_port(), hp = free_port();
  for (int i = 0; i < 10 && (hp == gp); i++) hp = free_port();
  if (gp <= 0 || hp <= 0 || gp == hp) return -1;
  cs->zl.grpc_port = gp;
  cs->zl.http_port = hp;
  snprintf(cs->zl.endpoint, sizeof cs->zl.endpoint, "http://127.0.0.1:%d", gp);
  snprintf(cs->zl.http_url, sizeof cs->zl.http_url, "http://127.0.0.1:%d", hp);
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  snprintf(cs->zl.db_path, sizeof cs->zl.db_path, "%s/zb-%s-%d-%d.db", tmp, tag, (int)getpid(), gp);
  snprintf(cs->log_path, sizeof cs->log_path, "%s/zb-%s-%d-%d.log", tmp, tag, (int)getpid(), gp);
  unlink(cs->zl.db_path);
  unlink(cs->log_path);
  return 0;
}

void chaos_server_set_flags(chaos_server *cs, const char *const *flags) {
  cs->n_extra = 0;
  for (int i = 0; flags && flags[i] && i < 15; i++) {
    snprintf(cs->extra_buf[i], sizeof cs->extra_buf[i], "%s", flags[i]);
    cs->extra[i] = cs->extra_buf[i];
    cs->n_extra = i + 1;
  }
  cs->extra[cs->n_extra] = NULL;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* 1 when the log holds a ready line after byte `from`, -1 when the child died. */
static int wait_ready(chaos_server *cs, long from, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    FILE *f = fopen(cs->log_path, "r");
    if (f) {
      fseek(f, from, SEEK_SET);
      char line[512];
      int found = 0;
      while (fgets(line, sizeof line, f))
        if (strncmp(line, "zerobus-local grpc=", 19) == 0) found = 1;
      fclose(f);
      if (found) return 1;
    }
    int st;
    if (waitpid(cs->zl.pid, &st, WNOHANG) == cs->zl.pid) {
      cs->zl.pid = 0;
      return -1;
    }
    sleep_ms(20);
  }
  return 0;
}

int chaos_server_start(chaos_server *cs) {
  char gp[16], hp[16];
  snprintf(gp, sizeof gp, "%d", cs->zl.grpc_port);
  snprintf(hp, sizeof hp, "%d", cs->zl.http_port);
  for (int attempt = 0; attempt < 20; attempt++) {
    long from = file_size(cs->log_path);
    const char *argv[40];
    int n = 0;
    argv[n++] = cs->bin;
    argv[n++] = "--host";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = gp;
    argv[n++] = "--http-port";
    argv[n++] = hp;
    argv[n++] = "--db";
    argv[n++] = cs->zl.db_path;
    for (int i = 0; i < cs->n_extra; i++) argv[n++] = cs->extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      int fd = open(cs->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      int nul = open("/dev/null", O_RDONLY);
      if (nul >= 0) dup2(nul, 0);
      execv(cs->bin, (char *const *)argv);
      _exit(127);
    }
    cs->zl.pid = pid;
    int r = wait_ready(cs, from, 10000);
    if (r == 1) {
      cs->starts++;
      return 0;
    }
    if (r == 0) { /* alive but not ready in 10 s: give up */
      chaos_server_kill(cs);
      fprintf(stderr, "chaos: zerobus-local not ready in 10 s (log %s)\n", cs->log_path);
      return -1;
    }
    /* exited at once: most likely the port is still held; retry */
    sleep_ms(250);
  }
  fprintf(stderr, "chaos: zerobus-local failed to start on ports %d/%d (log %s)\n",
          cs->zl.grpc_port, cs->zl.http_port, cs->log_path);
  return -1;
}

void chaos_server_kill(chaos_server *cs) {
  if (cs->zl.pid > 0) {
    kill(cs->zl.pid, SIGKILL);
    int st;
    while (waitpid(cs->zl.pid, &st, 0) < 0 && errno == EINTR) {
    }
    cs->zl.pid = 0;
  }
}

int chaos_server_stop(chaos_server *cs) {
  if (cs->zl.pid <= 0) return -1;
  kill(cs->zl.pid, SIGTERM);
  int st = 0;
  for (int waited = 0; waited < 15000; waited += 10) {
    pid_t r = waitpid(cs->zl.pid, &st, WNOHANG);
    if (r == cs->zl.pid) {
      cs->zl.pid = 0;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    sleep_ms(10);
  }
  chaos_server_kill(cs);
  return -1;
}

void chaos_server_cleanup(chaos_server *cs, int keep) {
  if (keep) return;
  char p[600];
  unlink(cs->zl.db_path);
  snprintf(p, sizeof p, "%s-wal", cs->zl.db_path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", cs->zl.db_path);
  unlink(p);
  unlink(cs->log_path);
}
