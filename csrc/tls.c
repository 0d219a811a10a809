/* tls.c: `ca_file` adds trust to the system store instead of replacing it. The file is read and
 * checked once at atladmin.new(); its certificates go into each new TLS context's X509_STORE
 * through libcurl's SSL_CTX callback (libcurl built with OpenSSL), after libcurl has loaded the
 * system store. Peer and host verification stay on whatever the file holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "internal.h"

#define CA_FILE_MAX (4u * 1024 * 1024)

/* Adds every certificate of the PEM text to store; returns how many were read, -1 on a bad
 * certificate. A certificate the store already holds counts as added. */
static int add_pem(X509_STORE *store, const char *pem, size_t len) {
  BIO *bio;
  X509 *x;
  int n = 0, bad = 0;
  ERR_clear_error();
  bio = BIO_new_mem_buf(pem, (int)len);
  if (!bio) return -1;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (store && !X509_STORE_add_cert(store, x)) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) bad = 1;
    }
    X509_free(x);
    n++;
  }
  /* the loop ends on "no start line" at the end of the text; anything else is a broken file */
  if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE && n > 0) bad = 1;
  ERR_clear_error();
  BIO_free(bio);
  return bad ? -1 : n;
}

static CURLcode on_ssl_ctx(CURL *e, void *ssl_ctx, void *ud) {
  atl_client *c = ud;
  X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)ssl_ctx);
  (void)e;
  if (!c->ca_pem || !store) return CURLE_OK;
  return add_pem(store, c->ca_pem, c->ca_pem_len) > 0 ? CURLE_OK : CURLE_SSL_CACERT_BADFILE;
}

static const char *read_file(const char *path, char **out, size_t *outlen) {
  FILE *f = fopen(path, "rb");
  char *buf;
  size_t n = 0, cap = 16384, got;
  if (!f) return "option 'ca_file' cannot be opened";
  buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      char *bigger = cap >= CA_FILE_MAX ? NULL : realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        fclose(f);
        return cap >= CA_FILE_MAX ? "option 'ca_file' is larger than 4 MiB" : "out of memory";
      }
      buf = bigger;
      cap *= 2;
    }
  }
  if (!buf || ferror(f)) {
    free(buf);
    fclose(f);
    return buf ? "option 'ca_file' cannot be read" : "out of memory";
  }
  fclose(f);
  *out = buf;
  *outlen = n;
  return NULL;
}

/* Reads ca_file into the client and arms the callback; NULL when fine, else what is wrong. */
const char *atl_tls_add_ca_file(atl_client *c, const char *path) {
  const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
  const char *problem;
  if (!cv->ssl_version || strncmp(cv->ssl_version, "OpenSSL", 7) != 0)
    return "option 'ca_file' needs libcurl built with OpenSSL (to add to the system store)";
  problem = read_file(path, &c->ca_pem, &c->ca_pem_len);
  if (problem) return problem;
  if (add_pem(NULL, c->ca_pem, c->ca_pem_len) <= 0)
    return "option 'ca_file' holds no valid PEM certificate";
  if (curl_easy_setopt(c->easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) != CURLE_OK ||
      curl_easy_setopt(c->easy, CURLOPT_SSL_CTX_DATA, c) != CURLE_OK)
    return "option 'ca_file' is not supported by this libcurl";
#if LIBCURL_VERSION_NUM >= 0x075700
  /* a cached store may be shared with other handles: never add this client's CAs to it */
  curl_easy_setopt(c->easy, CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
  return NULL;
}
