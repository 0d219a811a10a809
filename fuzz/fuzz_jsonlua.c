/* fuzz_jsonlua.c: differential libFuzzer target. Every input is decoded twice: by the direct
 * JSON-to-Lua decoder of token lists (jsonlua.c, atl_json_to_lua) and by cJSON +
 * atl_push_json (decode.c, every other response). It aborts when one accepts what the other
 * refuses, or when the two Lua values differ (types, integer or float subtype, string bytes,
 * table keys and values, atladmin.null positions, dropped null members). The token-list mode
 * (tokens = 1) is checked too: it must accept exactly what cJSON accepts as an array of
 * objects. Built with the core's sources: `make fuzz` (ASan + UBSan). Input: the JSON text.
 *
 * Where the two differ by design, jsonlua.c is the reference and cJSON the odd one; each such
 * difference is allowed here, and only here (fuzz/README.md lists them):
 *  1. Control bytes between tokens. cJSON skips every byte <= 0x20 (NUL, \f, \v, ...) as white
 *     space; JSON allows only space, \t, \n and \r, and jsonlua.c refuses the rest. Allowed:
 *     cJSON accepts, jsonlua refuses, and the text holds such a byte.
 *  2. \u with a non-hex digit. cJSON reads "\uZZZZ" as U+0000 (its hex reader returns 0 for a
 *     bad digit); jsonlua.c refuses it as invalid JSON. Allowed: cJSON accepts, jsonlua refuses,
 *     and the text holds a backslash-u not followed by four hex digits.
 *  3. NUL inside a string. cJSON keeps C strings, so a value or member name holding "\u0000"
 *     (or a raw NUL byte) ends there under atl_push_json; jsonlua.c keeps every byte. Allowed:
 *     the cJSON string is the jsonlua string cut at its first NUL; for member names so cut,
 *     only the presence of the cut name is checked (two names may collide once cut).
 *  4. A byte order mark before a one-byte value ("\xEF\xBB\xBF0"): cJSON skips the mark only
 *     when at least five bytes follow from the start (an off-by-one in its skip_utf8_bom), and
 *     then fails on the mark; jsonlua.c reads 0. Allowed: jsonlua accepts, cJSON refuses, and
 *     the text is a mark and one byte. (A token list, "[]" at least, is never that short.)
 * Both refuse, with different messages, nesting deeper than ATL_MAX_DEPTH (cJSON parses up to
 * 1000 levels and atl_push_json stops at ATL_MAX_DEPTH; jsonlua.c stops at ATL_MAX_DEPTH), text
 * after the value, lone or reversed surrogates: those are plain rejections on both sides and
 * are checked as such. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../csrc/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static void disagree(const char *what) {
  fprintf(stderr, "fuzz_jsonlua: the two decoders disagree: %s\n", what);
  abort();
}

static void release_tree(void *p) { cJSON_Delete(p); }

/* cJSON + atl_push_json the way decode.c's parse_whole does it: one value, then only JSON
 * white space. Leaves one value (or nothing) on the stack; returns 1 when it decoded. */
static int run_cjson(lua_State *S) {
  const char *s = lua_touserdata(S, 1);
  size_t len = (size_t)lua_tointeger(S, 2);
  const char *end = NULL;
  void **box = atl_push_box(S, release_tree);
  cJSON *tree = cJSON_ParseWithLengthOpts(s, len, &end, 0);
  if (!tree) return 0;
  *box = tree;
  while (end < s + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
  if (end != s + len) return 0;
  if (!atl_push_json(S, tree, 0)) return 0;
  /* shape as the token list wants it: an array of objects */
  {
    const cJSON *t;
    int ok = cJSON_IsArray(tree);
    for (t = ok ? tree->child : NULL; t && ok; t = t->next) ok = cJSON_IsObject(t);
    lua_pushboolean(S, ok);
  }
  return 2;
}

static int run_jsonlua(lua_State *S) {
  const char *s = lua_touserdata(S, 1);
  size_t len = (size_t)lua_tointeger(S, 2);
  int tokens = (int)lua_tointeger(S, 3);
  const char *why = NULL;
  if (!atl_json_to_lua(S, s, len, tokens, &why)) {
    lua_pushboolean(S, 0);
    lua_pushstring(S, why);
    return 2;
  }
  lua_pushboolean(S, 1);
  lua_insert(S, -2);
  return 2;
}

/* Runs f(data, size, tokens) under pcall; returns the number of results or -1 on a Lua error. */
static int call(lua_CFunction f, const uint8_t *data, size_t size, int tokens) {
  int top = lua_gettop(L);
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  lua_pushinteger(L, tokens);
  if (lua_pcall(L, 3, LUA_MULTRET, 0) != LUA_OK) return -1;
  return lua_gettop(L) - top;
}

/* The bytes of the string at idx up to its first NUL. */
static size_t cut_len(lua_State *S, int idx, const char **s) {
  size_t n;
  *s = lua_tolstring(S, idx, &n);
  return strlen(*s) < n ? strlen(*s) : n;
}

static void push_cut(lua_State *S, int idx) {
  const char *s;
  size_t n = cut_len(S, idx, &s);
  lua_pushlstring(S, s, n);
}

static int has_nul(lua_State *S, int idx) {
  size_t n;
  const char *s;
  if (lua_type(S, idx) != LUA_TSTRING) return 0;
  s = lua_tolstring(S, idx, &n);
  return memchr(s, '\0', n) != NULL;
}

/* Deep comparison of a (jsonlua) and b (cJSON), absolute indexes. */
static void compare(lua_State *S, int a, int b, int depth) {
  int ta = lua_type(S, a), tb = lua_type(S, b);
  if (depth > ATL_MAX_DEPTH + 2) disagree("deeper than the limit");
  if (ta != tb) disagree("value types differ");
  switch (ta) {
  case LUA_TBOOLEAN:
    if (lua_toboolean(S, a) != lua_toboolean(S, b)) disagree("booleans differ");
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(S, a) != lua_isinteger(S, b)) disagree("integer vs float subtype");
    if (lua_isinteger(S, a) ? lua_tointeger(S, a) != lua_tointeger(S, b)
                            : memcmp(&(lua_Number){lua_tonumber(S, a)}, &(lua_Number){lua_tonumber(S, b)},
                                     sizeof(lua_Number)) != 0)
      disagree("numbers differ");
    break;
  case LUA_TSTRING: {
    size_t na, nb;
    const char *sa = lua_tolstring(S, a, &na), *sb = lua_tolstring(S, b, &nb);
    if (na == nb && memcmp(sa, sb, na) == 0) break;
    if (memchr(sa, '\0', na) && nb == strlen(sa) && memcmp(sa, sb, nb) == 0) break; /* 3. */
    disagree("strings differ");
    break;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(S, a) != NULL || lua_touserdata(S, b) != NULL) disagree("not the null sentinel");
    break;
  case LUA_TTABLE: {
    int seen, cut, nb = 0;
    if (!lua_checkstack(S, 8)) disagree("stack");
    lua_newtable(S); /* names of a as cJSON would see them, to count them */
    seen = lua_gettop(S);
    lua_newtable(S); /* the names that names holding a NUL become once cut there */
    cut = lua_gettop(S);
    lua_pushnil(S);
    while (lua_next(S, a)) {
      lua_pop(S, 1);
      if (has_nul(S, -1)) {
        push_cut(S, -1);
        lua_pushboolean(S, 1);
        lua_rawset(S, cut);
      }
    }
    lua_pushnil(S);
    while (lua_next(S, a)) {
      int k = lua_gettop(S) - 1, v = lua_gettop(S), collides;
      lua_pushvalue(S, k);
      lua_rawget(S, cut);
      collides = !lua_isnil(S, -1);
      lua_pop(S, 1);
      if (has_nul(S, k) || collides) { /* 3.: only present (the value may be another's) */
        push_cut(S, k);
        lua_pushvalue(S, -1);
        lua_rawget(S, b);
        if (lua_isnil(S, -1)) disagree("a member cut at NUL is missing under cJSON");
        lua_pop(S, 1);
      } else {
        lua_pushvalue(S, k);
        lua_pushvalue(S, k);
        lua_rawget(S, b);
        if (lua_isnil(S, -1)) disagree("a key is missing under cJSON");
        compare(S, v, lua_gettop(S), depth + 1);
        lua_pop(S, 1);
      }
      lua_pushboolean(S, 1);
      lua_rawset(S, seen);
      lua_pop(S, 1);
    }
    lua_pushnil(S);
    while (lua_next(S, b)) {
      nb++;
      lua_pop(S, 1);
      lua_pushvalue(S, -1);
      lua_rawget(S, seen);
      if (lua_isnil(S, -1)) disagree("cJSON has a key jsonlua lacks");
      lua_pop(S, 1);
    }
    {
      int na = 0;
      lua_pushnil(S);
      while (lua_next(S, seen)) {
        na++;
        lua_pop(S, 1);
      }
      if (na != nb) disagree("tables differ in size");
    }
    lua_pop(S, 2);
    break;
  }
  default:
    disagree("unexpected Lua type");
  }
}

static int has_odd_space(const uint8_t *d, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (d[i] < 0x20 && d[i] != ' ' && d[i] != '\t' && d[i] != '\n' && d[i] != '\r') return 1;
  return 0;
}

static int is_hex(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int has_bad_u_escape(const uint8_t *d, size_t n) {
  size_t i;
  for (i = 0; i + 1 < n; i++) {
    if (d[i] != '\\') continue;
    if (d[i + 1] == 'u' && (i + 5 >= n || !is_hex(d[i + 2]) || !is_hex(d[i + 3]) || !is_hex(d[i + 4]) ||
                            !is_hex(d[i + 5])))
      return 1;
    i++; /* the escaped byte is not a backslash that starts an escape */
  }
  return 0;
}

/* A copy of d where the cJSON quirks 1. and 2. are made plain JSON: every control byte but the
 * four white-space ones becomes a space (white space between tokens, a byte like any other in
 * a string) and a \u escape with a non-hex digit becomes \u0000 (what cJSON read). NULL when
 * such an escape holds a backslash: cJSON then pairs that backslash with the next byte when it
 * looks for the string's end but not when it reads the escape (so `"\u00e\"x"` is one string
 * holding a quote), which plain JSON cannot say. */
static uint8_t *unquirk(const uint8_t *d, size_t n) {
  uint8_t *c = malloc(n ? n : 1);
  size_t i;
  if (!c) abort();
  memcpy(c, d, n);
  for (i = 0; i < n; i++)
    if (c[i] < 0x20 && c[i] != ' ' && c[i] != '\t' && c[i] != '\n' && c[i] != '\r') c[i] = ' ';
  for (i = 0; i + 1 < n; i++) {
    if (c[i] != '\\') continue;
    if (c[i + 1] == 'u' && i + 5 < n && !(is_hex(c[i + 2]) && is_hex(c[i + 3]) && is_hex(c[i + 4]) && is_hex(c[i + 5]))) {
      if (memchr(c + i + 2, '\\', 4)) { /* cJSON's string end then differs from its escapes: no plain twin */
        free(c);
        return NULL;
      }
      memcpy(c + i + 2, "0000", 4);
    }
    i++;
  }
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long calls;
  int nc, nj, nt, c_ok, j_ok, t_ok, c_shape = 0;
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
  }
  lua_settop(L, 0);
  nc = call(run_cjson, data, size, 0);
  nj = call(run_jsonlua, data, size, 0);
  nt = call(run_jsonlua, data, size, 1);
  if (nc < 0 || nj != 2 || nt != 2) disagree("a decoder raised a Lua error");
  /* stack: [cJSON value, shape ok] (when it decoded), jsonlua ok, value or why, the same for
   * token mode */
  c_ok = nc == 2;
  j_ok = lua_toboolean(L, nc + 1);
  t_ok = lua_toboolean(L, nc + 3);
  if (c_ok) c_shape = lua_toboolean(L, 2);
  if (c_ok && !j_ok) {
    uint8_t *plain;
    if (!has_odd_space(data, size) && !has_bad_u_escape(data, size)) disagree("cJSON accepts, jsonlua refuses");
    /* those quirks must be the only reason: without them jsonlua accepts */
    if ((plain = unquirk(data, size)) != NULL) {
      nj = call(run_jsonlua, plain, size, 0);
      if (nj != 2 || !lua_toboolean(L, -2)) disagree("cJSON accepts, jsonlua refuses, not only for cJSON's quirks");
      free(plain);
    }
  } else if (!c_ok && j_ok) {
    if (!(size == 4 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)) disagree("jsonlua accepts, cJSON refuses");
  } else if (c_ok && j_ok) {
    compare(L, nc + 2, 1, 0);
    /* token mode: accepts exactly the arrays of objects, with the same value */
    if (t_ok != c_shape) disagree("token mode and cJSON differ on the shape");
    if (t_ok) compare(L, nc + 4, 1, 0);
    else if (strcmp(lua_tostring(L, nc + 4), "expected a JSON array of tokens") != 0 &&
             strcmp(lua_tostring(L, nc + 4), "a token is not a JSON object") != 0)
      disagree("token mode refuses valid JSON for another reason than its shape");
  }
  if (!j_ok && (t_ok || strcmp(lua_tostring(L, nc + 2), lua_tostring(L, nc + 4)) != 0))
    disagree("token mode refuses invalid JSON for another reason than the plain mode");
  lua_settop(L, 0);
  if (++calls % 1000 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
