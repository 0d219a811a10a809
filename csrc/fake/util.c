/* Small helpers for atladmin-fake: memory, percent-coding, clock, interruptible sleep, logging. */
#include "fake.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int stop_flag;

void *fake_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("atladmin-fake: out of memory\n", stderr);
    abort();
  }
  return p;
}

char *fake_strndup(const char *s, size_t n) {
  char *p = fake_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *fake_strdup(const char *s) {
  return fake_strndup(s, strlen(s));
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode %XX escapes in s[0..n); a malformed escape is kept literally. '+' stays '+'.
 *outlen (if given) gets the decoded length, which may include NUL bytes. */
char *fake_pct_decode(const char *s, size_t n, size_t *outlen) {
  char *out = fake_xmalloc(n + 1);
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n) {
      int hi = hexval((unsigned char)s[i + 1]);
      int lo = hexval((unsigned char)s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out[o++] = s[i];
  }
  out[o] = '\0';
  if (outlen)
    *outlen = o;
  return out;
}

/* Encode everything but RFC 3986 unreserved characters. */
char *fake_pct_encode(const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s), i, o = 0;
  char *out = fake_xmalloc(n * 3 + 1);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
  return out;
}

long long fake_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fake_iso_time(long long epoch_ms, char *out, size_t outsz) {
  time_t secs = (time_t)(epoch_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
}

int fake_stopping(void) {
  return __atomic_load_n(&stop_flag, __ATOMIC_SEQ_CST);
}

void fake_request_stop(void) {
  __atomic_store_n(&stop_flag, 1, __ATOMIC_SEQ_CST);
}

/* True when the peer of fd has closed or reset its side. */
int fake_client_gone(int fd) {
  struct pollfd p;
  char c;
  if (fd < 0)
    return 0;
  p.fd = fd;
  p.events = POLLIN | POLLRDHUP;
  p.revents = 0;
  if (poll(&p, 1, 0) <= 0)
    return 0;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
    return 1;
  if (p.revents & POLLIN) {
    ssize_t got = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      return 1;
  }
  return 0;
}

/* Sleep ms in short slices. Returns 0 when the time ran out, 1 when the server is stopping,
   2 when the client behind fd (if fd >= 0) went away. */
int fake_nap(long ms, int fd) {
  long long deadline = fake_now_ms() + ms;
  for (;;) {
    long long left;
    long slice;
    if (fake_stopping())
      return 1;
    if (fake_client_gone(fd))
      return 2;
    left = deadline - fake_now_ms();
    if (left <= 0)
      return 0;
    slice = left < 20 ? (long)left : 20;
    if (fd >= 0) {
      /* POLLRDHUP only: pending request bytes must not turn this into a busy loop */
      struct pollfd p;
      p.fd = fd;
      p.events = POLLRDHUP;
      p.revents = 0;
      if (poll(&p, 1, (int)slice) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        return 2;
    } else {
      struct timespec ts;
      ts.tv_sec = 0;
      ts.tv_nsec = slice * 1000000L;
      nanosleep(&ts, NULL);
    }
  }
}

void fake_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  flockfile(stderr);
  vfprintf(stderr, fmt, ap);
  fflush(stderr);
  funlockfile(stderr);
  va_end(ap);
}
