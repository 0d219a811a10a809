/* fuzz_request.c: libFuzzer target over request building from untrusted strings: ids must
 * become exactly one path segment each (no '/', '?', '#', dot-segment or raw control byte can
 * reach the path), query values stay inside their parameter, and a base URL is accepted only
 * when it is https, or http to a loopback host. Any violation aborts. Input: a base URL, an
 * account id and a token id separated by 0xff bytes. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../csrc/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

/* Every byte of an encoded segment is unreserved or part of a %XX escape. */
static void check_segment(const char *p, size_t n) {
  size_t i;
  if (n == 0) abort();
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch == '%') {
      if (i + 2 >= n || !isxdigit((unsigned char)p[i + 1]) || !isxdigit((unsigned char)p[i + 2])) abort();
      i += 2;
      continue;
    }
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == ':'))
      abort();
  }
  if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) abort();
}

static int run(lua_State *S) {
  const char *parts[3];
  size_t lens[3], n = 0;
  const uint8_t *data = lua_touserdata(S, 1), *p, *end;
  size_t size = (size_t)lua_tointeger(S, 2);
  char norm[2048], base[1024];
  const char *url, *rest;
  size_t ulen, blen;
  int i;
  p = data;
  end = data + size;
  while (n < 3) {
    const uint8_t *q = memchr(p, 0xff, (size_t)(end - p));
    if (!q) q = end;
    parts[n] = (const char *)p;
    lens[n] = (size_t)(q - p);
    n++;
    if (q == end) break;
    p = q + 1;
  }
  while (n < 3) {
    parts[n] = "x";
    lens[n++] = 1;
  }

  /* the base URL: a C string (NULs are refused by the option reader before this point) */
  blen = lens[0] < sizeof base - 1 ? lens[0] : sizeof base - 1;
  memcpy(base, parts[0], blen);
  base[blen] = '\0';
  if (atl_check_base_url(base, norm, sizeof norm) == NULL) {
    if (strncmp(norm, "https://", 8) != 0 && strncmp(norm, "http://", 7) != 0) abort();
    if (strncmp(norm, "http://", 7) == 0) {
      const char *h = norm + 7;
      size_t hl = strcspn(h, ":/");
      int loop = (hl == 9 && strncasecmp(h, "localhost", 9) == 0) ||
                 (strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") == hl);
      if (strncmp(h, "[::1]", 5) == 0) loop = 1;
      if (!loop) abort();
    }
  }

  /* the ids: either refused, or each becomes exactly one well-formed segment */
  for (i = 1; i < 3; i++)
    if (atl_id_problem(parts[i], lens[i])) return 0;
  atl_push_url(S, "https://api.example", &atl_op_revoke, parts + 1, lens + 1, NULL);
  url = lua_tolstring(S, -1, &ulen);
  if (strncmp(url, "https://api.example/users/", 26) != 0) abort();
  rest = url + 26;
  {
    const char *slash = strchr(rest, '/');
    const char *tail = "/manage/api-tokens/";
    const char *tok;
    if (!slash) abort();
    check_segment(rest, (size_t)(slash - rest));
    if (strncmp(slash, tail, strlen(tail)) != 0) abort();
    tok = slash + strlen(tail);
    check_segment(tok, strlen(tok));
    if (strchr(url, '?') || strchr(url, '#')) abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long calls;
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
  }
  lua_pushcfunction(L, run);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) abort(); /* nothing here may raise */
  lua_settop(L, 0);
  if (++calls % 1000 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
