/* atladmin-fake: command line, startup, readiness line and port file, clean shutdown on signals. */
#include "fake.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fake_config fake_cfg;

static const char usage[] =
    "usage: atladmin-fake [--state FILE | --sample N] [--port N] [--host 127.0.0.1|::1]\n"
    "                     [--key KEY] [--latency-ms N] [--page-size N]\n"
    "                     [--tls-cert FILE --tls-key FILE] [--port-file FILE] [--quiet]\n"
    "                     [--exit-on-stdin-eof]\n"
    "A fake Atlassian Admin API on loopback, for tests and demos.\n"
    "Key: --key, else $ATLADMIN_FAKE_KEY, else the state's \"key\", else " FAKE_DEFAULT_KEY
    ".\n"
    "Control API (no auth): /_fake/health, /_fake/requests, /_fake/faults, /_fake/state.\n";

static long parse_num(const char *opt, const char *s, long lo, long hi) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) {
    fprintf(stderr, "atladmin-fake: %s wants a number from %ld to %ld, not \"%s\"\n", opt, lo, hi,
            s);
    exit(2);
  }
  return v;
}

/* Writes the port to path through a temporary file, so a reader never sees half of it. */
static int write_port_file(const char *path, int port) {
  size_t n = strlen(path) + 32;
  char *tmp = fake_xmalloc(n);
  FILE *f;
  int ok;
  snprintf(tmp, n, "%s.%ld.tmp", path, (long)getpid());
  f = fopen(tmp, "w");
  if (!f) {
    free(tmp);
    return -1;
  }
  ok = fprintf(f, "%d\n", port) > 0;
  ok = (fclose(f) == 0) && ok;
  ok = ok && rename(tmp, path) == 0;
  if (!ok)
    unlink(tmp);
  free(tmp);
  return ok ? 0 : -1;
}

/* With --exit-on-stdin-eof the server ends when whoever started it goes away. */
static void *watch_stdin(void *arg) {
  char buf[256];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR))
      break;
  }
  kill(getpid(), SIGTERM);
  return NULL;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"state", required_argument, NULL, 's'},
                                           {"port", required_argument, NULL, 'p'},
                                           {"host", required_argument, NULL, 'H'},
                                           {"key", required_argument, NULL, 'k'},
                                           {"latency-ms", required_argument, NULL, 'l'},
                                           {"page-size", required_argument, NULL, 'P'},
                                           {"sample", required_argument, NULL, 'S'},
                                           {"tls-cert", required_argument, NULL, 'c'},
                                           {"tls-key", required_argument, NULL, 'K'},
                                           {"port-file", required_argument, NULL, 'f'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"exit-on-stdin-eof", no_argument, NULL, 'e'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  const char *state_file = NULL, *key = NULL, *tls_cert = NULL, *tls_key = NULL;
  const char *port_file = NULL;
  long sample = -1;
  int exit_on_eof = 0, watching = 0, opt, sig;
  char err[256];
  sigset_t sigs;
  struct MHD_Daemon *server;
  pthread_t watcher;

  fake_cfg.host = "127.0.0.1";
  fake_cfg.page_size = 100;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (opt) {
    case 's':
      state_file = optarg;
      break;
    case 'p':
      fake_cfg.port = (int)parse_num("--port", optarg, 0, 65535);
      break;
    case 'H':
      if (strcmp(optarg, "127.0.0.1") == 0 || strcmp(optarg, "localhost") == 0) {
        fake_cfg.host = "127.0.0.1";
      } else if (strcmp(optarg, "::1") == 0 || strcmp(optarg, "[::1]") == 0) {
        fake_cfg.host = "::1";
        fake_cfg.ipv6 = 1;
      } else {
        fprintf(stderr, "atladmin-fake: --host must be 127.0.0.1 or ::1 (loopback only)\n");
        return 2;
      }
      break;
    case 'k':
      key = optarg;
      break;
    case 'l':
      fake_cfg.latency_ms = parse_num("--latency-ms", optarg, 0, 3600000);
      break;
    case 'P':
      fake_cfg.page_size = parse_num("--page-size", optarg, 1, 100000);
      break;
    case 'S':
      sample = parse_num("--sample", optarg, 0, 1000000);
      break;
    case 'c':
      tls_cert = optarg;
      break;
    case 'K':
      tls_key = optarg;
      break;
    case 'f':
      port_file = optarg;
      break;
    case 'q':
      fake_cfg.quiet = 1;
      break;
    case 'e':
      exit_on_eof = 1;
      break;
    case 'h':
      fputs(usage, stdout);
      return 0;
    default:
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "atladmin-fake: unexpected argument \"%s\"\n%s", argv[optind], usage);
    return 2;
  }
  if (state_file && sample >= 0) {
    fprintf(stderr, "atladmin-fake: --state and --sample exclude each other\n");
    return 2;
  }
  if (!tls_cert != !tls_key) {
    fprintf(stderr, "atladmin-fake: --tls-cert and --tls-key go together\n");
    return 2;
  }
  fake_cfg.tls = tls_cert != NULL;

  if (!key && getenv("ATLADMIN_FAKE_KEY") && getenv("ATLADMIN_FAKE_KEY")[0])
    key = getenv("ATLADMIN_FAKE_KEY");
  state_set_cli_key(key);
  if (state_file) {
    if (state_load_file(state_file, err, sizeof err)) {
      fprintf(stderr, "atladmin-fake: %s\n", err);
      state_free();
      return 1;
    }
  } else if (state_replace(sample >= 0 ? sample_state((int)sample) : cJSON_CreateObject(), err,
                           sizeof err)) {
    fprintf(stderr, "atladmin-fake: %s\n", err);
    state_free();
    return 1;
  }

  /* every thread started from here on inherits these signals blocked; main waits for them */
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  server = http_start(tls_cert, tls_key, err, sizeof err);
  if (!server) {
    fprintf(stderr, "atladmin-fake: %s\n", err);
    http_stop(NULL);
    state_free();
    return 1;
  }
  if (port_file && write_port_file(port_file, fake_cfg.bound_port)) {
    fprintf(stderr, "atladmin-fake: cannot write %s\n", port_file);
    http_stop(server);
    state_free();
    return 1;
  }
  printf("atladmin-fake listening on %s://%s%s%s:%d\n", fake_cfg.tls ? "https" : "http",
         fake_cfg.ipv6 ? "[" : "", fake_cfg.host, fake_cfg.ipv6 ? "]" : "", fake_cfg.bound_port);
  fflush(stdout);
  if (exit_on_eof)
    watching = pthread_create(&watcher, NULL, watch_stdin, NULL) == 0;

  do {
    if (sigwait(&sigs, &sig) != 0)
      sig = SIGTERM;
  } while (sig != SIGINT && sig != SIGTERM && sig != SIGHUP);

  fake_request_stop();
  if (watching) {
    /* the watcher may still sit in read(), a cancellation point */
    pthread_cancel(watcher);
    pthread_join(watcher, NULL);
  }
  http_stop(server);
  if (port_file)
    unlink(port_file);
  faults_clear();
  reqlog_free();
  state_free();
  if (!fake_cfg.quiet)
    fprintf(stderr, "atladmin-fake: stopped\n");
  return 0;
}
