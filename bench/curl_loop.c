/* bench/curl_loop.c: the reference loop: N sequential GETs on one libcurl easy handle (connection
 * reuse, bearer auth, body collected in memory, TLS verified when the URL is https), the fastest a
 * client on this stack can go. It sends the same request as atladmin (same header lines, so the
 * same bytes on the wire) and does nothing with the body. Prints the seconds taken.
 *   curl_loop URL N [CA_FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

struct buf {
  char *p;
  size_t len, cap;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct buf *b = ud;
  size_t k = size * n;
  if (b->len + k + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + k + 1) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) return 0;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, k);
  b->len += k;
  return k;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  struct buf b = {NULL, 0, 0};
  struct curl_slist *h = NULL;
  CURL *e;
  long i, n, status = 0;
  double t0;
  if (argc < 3) {
    fprintf(stderr, "usage: curl_loop URL N [CA_FILE]\n");
    return 2;
  }
  n = atol(argv[2]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  h = curl_slist_append(h, "Accept: application/json");
  h = curl_slist_append(h, "Accept-Encoding: deflate, gzip, br, zstd");
  h = curl_slist_append(h, "User-Agent: atladmin/0.1.0 libcurl/7.88.1");
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
  curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, "bench-key");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  if (argc > 3) curl_easy_setopt(e, CURLOPT_CAINFO, argv[3]);
  t0 = now();
  for (i = 0; i < n; i++) {
    b.len = 0;
    if (curl_easy_perform(e) != CURLE_OK) {
      fprintf(stderr, "curl_loop: request %ld failed\n", i);
      return 1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
      fprintf(stderr, "curl_loop: status %ld\n", status);
      return 1;
    }
  }
  printf("%.6f\n", now() - t0);
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  free(b.p);
  curl_global_cleanup();
  return 0;
}
