/* jsonlua.c: JSON text straight into Lua values, without an intermediate tree: the fast path
 * for token lists, which can hold thousands of entries. Same results as cJSON + atl_push_json
 * (null members of objects dropped, null in arrays as atladmin.null, whole numbers as integers,
 * nesting limited to ATL_MAX_DEPTH). Holds no malloc'ed memory, so a Lua error cannot leak. */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

typedef struct jp {
  lua_State *L;
  const char *p, *end;
  const char *why;               /* why parsing failed */
  const char *shape;            /* valid JSON, but not the shape asked for */
  int tokens;                   /* the root must be an array of objects */
} jp;

#define BAD_JSON "response body is not valid JSON (or nests too deeply)"

static void skip_ws(jp *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static int fail(jp *j, const char *why) {
  if (!j->why) j->why = why;
  return 0;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void add_utf8(luaL_Buffer *b, unsigned cp) {
  if (cp < 0x80) {
    luaL_addchar(b, (char)cp);
  } else if (cp < 0x800) {
    luaL_addchar(b, (char)(0xC0 | (cp >> 6)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    luaL_addchar(b, (char)(0xE0 | (cp >> 12)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  } else {
    luaL_addchar(b, (char)(0xF0 | (cp >> 18)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  }
}

/* Pushes the string starting after the opening quote. */
static int parse_string(jp *j) {
  const char *s = j->p, *q = s;
  luaL_Buffer b;
  while (q < j->end && *q != '"' && *q != '\\') q++;
  if (q >= j->end) return fail(j, BAD_JSON);
  if (*q == '"') { /* no escapes: the common case */
    lua_pushlstring(j->L, s, (size_t)(q - s));
    j->p = q + 1;
    return 1;
  }
  luaL_buffinit(j->L, &b);
  luaL_addlstring(&b, s, (size_t)(q - s));
  while (q < j->end && *q != '"') {
    if (*q != '\\') {
      luaL_addchar(&b, *q++);
      continue;
    }
    if (++q >= j->end) return fail(j, BAD_JSON);
    switch (*q) {
    case '"': case '\\': case '/': luaL_addchar(&b, *q); q++; break;
    case 'b': luaL_addchar(&b, '\b'); q++; break;
    case 'f': luaL_addchar(&b, '\f'); q++; break;
    case 'n': luaL_addchar(&b, '\n'); q++; break;
    case 'r': luaL_addchar(&b, '\r'); q++; break;
    case 't': luaL_addchar(&b, '\t'); q++; break;
    case 'u': {
      unsigned cp, lo;
      if (j->end - q < 5 || !hex4(q + 1, &cp)) return fail(j, BAD_JSON);
      q += 5;
      if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(j, BAD_JSON);
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (j->end - q < 6 || q[0] != '\\' || q[1] != 'u' || !hex4(q + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
          return fail(j, BAD_JSON);
        q += 6;
        cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
      }
      add_utf8(&b, cp);
      break;
    }
    default:
      return fail(j, BAD_JSON);
    }
  }
  if (q >= j->end) return fail(j, BAD_JSON);
  luaL_pushresult(&b);
  j->p = q + 1;
  return 1;
}

static int parse_number(jp *j) {
  const char *s = j->p, *q = s;
  char small[64], *tmp = small, *endp;
  size_t n;
  double d;
  long long whole = 0;
  int digits_only = 1, neg = 0;
  if (q < j->end && *q == '-') {
    neg = 1;
    q++;
  }
  while (q < j->end && *q >= '0' && *q <= '9') {
    if (q - s < 16) whole = whole * 10 + (*q - '0');
    q++;
  }
  while (q < j->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-')) {
    digits_only = 0;
    q++;
  }
  n = (size_t)(q - s);
  if (n == 0 || (n == 1 && neg)) return fail(j, BAD_JSON);
  j->p = q;
  if (digits_only && n - (size_t)neg <= 15) {
    atl_pushwhole(j->L, neg ? -whole : whole);
    return 1;
  }
  if (n >= sizeof small) /* valid JSON too (cJSON reads any length): a scratch userdata */
    tmp = atl_newuserdata(j->L, n + 1);
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  {
    /* strtod follows the locale's decimal point; JSON's is always '.' */
    const char *dp = localeconv()->decimal_point;
    char *dot = strchr(tmp, '.');
    if (dot && dp && dp[0] && dp[0] != '.' && !dp[1]) *dot = dp[0];
  }
  d = strtod(tmp, &endp);
  n = (size_t)(endp - tmp);
  if (tmp != small) lua_pop(j->L, 1);
  if (n == 0) return fail(j, BAD_JSON);
  j->p = s + n;
  if (d == floor(d) && fabs(d) <= 9007199254740992.0) atl_pushwhole(j->L, (long long)d);
  else lua_pushnumber(j->L, (lua_Number)d);
  return 1;
}

static int literal(jp *j, const char *word, size_t n) {
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return fail(j, BAD_JSON);
  j->p += n;
  return 1;
}

static int parse_value(jp *j, int depth);

/* After an array item or object member: 0 when a ',' follows (another comes), 1 when the
 * closing bracket does (consumed), -1 for anything else. */
static int after_item(jp *j, char close) {
  skip_ws(j);
  if (j->p >= j->end) return -1;
  if (*j->p == ',' || *j->p == close) return *j->p++ == close;
  return -1;
}

static int parse_array(jp *j, int depth) {
  lua_State *L = j->L;
  int i = 0;
  lua_createtable(L, depth == 0 && j->tokens ? 64 : 0, 0);
  skip_ws(j);
  if (j->p < j->end && *j->p == ']') {
    j->p++;
    return 1;
  }
  for (;;) {
    skip_ws(j);
    if (depth == 0 && j->tokens && j->p < j->end && *j->p != '{' && !j->shape)
      j->shape = "a token is not a JSON object";
    if (!parse_value(j, depth + 1)) return 0;
    lua_rawseti(L, -2, ++i);
    switch (after_item(j, ']')) {
    case 0: continue;
    case 1: return 1;
    default: return fail(j, BAD_JSON);
    }
  }
}

static int parse_object(jp *j, int depth) {
  lua_State *L = j->L;
  lua_createtable(L, 0, depth == 1 && j->tokens ? 4 : 0);
  skip_ws(j);
  if (j->p < j->end && *j->p == '}') {
    j->p++;
    return 1;
  }
  for (;;) {
    skip_ws(j);
    if (j->p >= j->end || *j->p != '"') return fail(j, BAD_JSON);
    j->p++;
    if (!parse_string(j)) return 0;
    skip_ws(j);
    if (j->p >= j->end || *j->p != ':') return fail(j, BAD_JSON);
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == 'n') { /* a null member is dropped */
      if (!literal(j, "null", 4)) return 0;
      lua_pop(L, 1);
    } else {
      if (!parse_value(j, depth + 1)) return 0;
      lua_rawset(L, -3);
    }
    switch (after_item(j, '}')) {
    case 0: continue;
    case 1: return 1;
    default: return fail(j, BAD_JSON);
    }
  }
}

static int parse_value(jp *j, int depth) {
  skip_ws(j);
  if (j->p >= j->end) return fail(j, BAD_JSON);
  if (depth > ATL_MAX_DEPTH) return fail(j, "response JSON nests too deeply");
  if (!lua_checkstack(j->L, 4)) luaL_error(j->L, "atladmin: Lua stack exhausted while decoding JSON");
  switch (*j->p) {
  case '{': j->p++; return parse_object(j, depth);
  case '[': j->p++; return parse_array(j, depth);
  case '"': j->p++; return parse_string(j);
  case 't': if (!literal(j, "true", 4)) return 0; lua_pushboolean(j->L, 1); return 1;
  case 'f': if (!literal(j, "false", 5)) return 0; lua_pushboolean(j->L, 0); return 1;
  case 'n': if (!literal(j, "null", 4)) return 0; atl_push_null(j->L); return 1;
  default:
    if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) return parse_number(j);
    return fail(j, BAD_JSON);
  }
}

/* Pushes the Lua value of the JSON text s (an array of objects when tokens is set) and returns
 * 1, or returns 0 with nothing pushed and *why saying what is wrong: invalid JSON first, then
 * the wrong shape. Like cJSON, a UTF-8 byte order mark is skipped; anything but white space
 * after the value makes the text invalid, as in decode.c. */
int atl_json_to_lua(lua_State *L, const char *s, size_t len, int tokens, const char **why) {
  jp j;
  int top = lua_gettop(L);
  j.L = L;
  j.p = s;
  j.end = s + len;
  j.why = j.shape = NULL;
  j.tokens = tokens;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) j.p += 3;
  skip_ws(&j);
  if (tokens && j.p < j.end && *j.p != '[') {
    j.tokens = 0;
    j.shape = "expected a JSON array of tokens";
  }
  if (parse_value(&j, 0)) {
    skip_ws(&j);
    if (j.p != j.end) fail(&j, BAD_JSON); /* one value and nothing after it but white space */
  }
  if (j.why || j.shape) {
    lua_settop(L, top);
    *why = j.why ? j.why : j.shape;
    return 0;
  }
  return 1;
}
