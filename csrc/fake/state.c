/* The fake's world: accounts, tokens, organizations and the accepted key, behind one mutex. */
#include "fake.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t state_mutex = PTHREAD_MUTEX_INITIALIZER;
static cJSON *state_root;
static char *cli_key;  /* --key or ATLADMIN_FAKE_KEY: wins over the state file */
static char *file_key; /* the state's "key" */

void state_lock(void) {
  pthread_mutex_lock(&state_mutex);
}

void state_unlock(void) {
  pthread_mutex_unlock(&state_mutex);
}

void state_set_cli_key(const char *key) {
  state_lock();
  free(cli_key);
  cli_key = key ? fake_strdup(key) : NULL;
  state_unlock();
}

int state_key_matches(const char *presented) {
  const char *want;
  size_t i, n, m;
  unsigned diff = 0;
  int ok;
  if (!presented)
    return 0;
  state_lock();
  want = cli_key ? cli_key : file_key ? file_key : FAKE_DEFAULT_KEY;
  n = strlen(want);
  m = strlen(presented);
  /* compare every byte so the time spent does not hint at the key */
  for (i = 0; i < m; i++)
    diff |= (unsigned)(unsigned char)presented[i] ^ (unsigned)(unsigned char)(i < n ? want[i] : 0);
  ok = diff == 0 && n == m;
  state_unlock();
  return ok;
}

/* Make parent[name] an array (array != 0) or an object: absent -> an empty one; an empty one
 * of the other kind (lua-cjson writes an empty table as {}) -> an empty one of this kind. */
static int want_kind(cJSON *parent, const char *name, int array, const char *where, char *err,
                     size_t errsz) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, name);
  if (!v) {
    cJSON_AddItemToObject(parent, name, array ? cJSON_CreateArray() : cJSON_CreateObject());
    return 0;
  }
  if ((array ? cJSON_IsObject(v) : cJSON_IsArray(v)) && v->child == NULL) {
    cJSON_ReplaceItemInObjectCaseSensitive(parent, name, array ? cJSON_CreateArray() : cJSON_CreateObject());
    return 0;
  }
  if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v)) {
    snprintf(err, errsz, "%s: \"%s\" must be an %s", where, name, array ? "array" : "object");
    return -1;
  }
  return 0;
}

static int want_array(cJSON *parent, const char *name, const char *where, char *err, size_t errsz) {
  return want_kind(parent, name, 1, where, err, errsz);
}

static int want_object(cJSON *parent, const char *name, const char *where, char *err, size_t errsz) {
  return want_kind(parent, name, 0, where, err, errsz);
}

static void set_string(cJSON *obj, const char *name, const char *value) {
  cJSON *s = cJSON_CreateString(value);
  if (cJSON_GetObjectItemCaseSensitive(obj, name))
    cJSON_ReplaceItemInObjectCaseSensitive(obj, name, s);
  else
    cJSON_AddItemToObject(obj, name, s);
}

static int normalize_account(const char *id, cJSON *acct, char *err, size_t errsz) {
  cJSON *t, *profile, *status, *pstatus;
  if (!cJSON_IsObject(acct)) {
    snprintf(err, errsz, "account %s must be an object", id);
    return -1;
  }
  if (want_array(acct, "tokens", id, err, errsz) || want_array(acct, "deny", id, err, errsz) ||
      want_object(acct, "profile", id, err, errsz))
    return -1;
  cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(acct, "tokens")) {
    if (!cJSON_IsObject(t) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(t, "id"))) {
      snprintf(err, errsz, "%s: every token must be an object with a string \"id\"", id);
      return -1;
    }
  }
  cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(acct, "deny")) {
    if (!cJSON_IsString(t)) {
      snprintf(err, errsz, "%s: \"deny\" must hold privilege names", id);
      return -1;
    }
  }
  profile = cJSON_GetObjectItemCaseSensitive(acct, "profile");
  if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(profile, "account_id")))
    set_string(profile, "account_id", id);
  if (!cJSON_GetObjectItemCaseSensitive(profile, "account_type"))
    set_string(profile, "account_type", "atlassian");
  /* "status" is the lifecycle truth; the profile's account_status mirrors it */
  status = cJSON_GetObjectItemCaseSensitive(acct, "status");
  pstatus = cJSON_GetObjectItemCaseSensitive(profile, "account_status");
  if (!cJSON_IsString(status)) {
    const char *s = cJSON_IsString(pstatus) ? pstatus->valuestring : "active";
    if (status)
      cJSON_DeleteItemFromObjectCaseSensitive(acct, "status");
    cJSON_AddStringToObject(acct, "status", s);
    status = cJSON_GetObjectItemCaseSensitive(acct, "status");
  }
  set_string(profile, "account_status", status->valuestring);
  t = cJSON_GetObjectItemCaseSensitive(acct, "unverified");
  if (t && !cJSON_IsBool(t)) {
    snprintf(err, errsz, "%s: \"unverified\" must be a boolean", id);
    return -1;
  }
  return 0;
}

int state_normalize(cJSON *root, char *err, size_t errsz) {
  cJSON *it, *key;
  if (!cJSON_IsObject(root)) {
    snprintf(err, errsz, "state must be a JSON object");
    return -1;
  }
  key = cJSON_GetObjectItemCaseSensitive(root, "key");
  if (key && !cJSON_IsString(key) && !cJSON_IsNull(key)) {
    snprintf(err, errsz, "\"key\" must be a string");
    return -1;
  }
  if (want_object(root, "accounts", "state", err, errsz) ||
      want_object(root, "orgs", "state", err, errsz))
    return -1;
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "accounts")) {
    if (normalize_account(it->string, it, err, errsz))
      return -1;
  }
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "orgs")) {
    cJSON *u, *access;
    if (!cJSON_IsObject(it)) {
      snprintf(err, errsz, "org %s must be an object", it->string);
      return -1;
    }
    if (want_array(it, "users", it->string, err, errsz))
      return -1;
    cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(it, "users")) {
      if (!cJSON_IsString(u)) {
        snprintf(err, errsz, "org %s: \"users\" must hold account ids", it->string);
        return -1;
      }
    }
    access = cJSON_GetObjectItemCaseSensitive(it, "api_access");
    if (!access)
      cJSON_AddTrueToObject(it, "api_access");
    else if (!cJSON_IsBool(access)) {
      snprintf(err, errsz, "org %s: \"api_access\" must be a boolean", it->string);
      return -1;
    }
  }
  return 0;
}

int state_replace(cJSON *doc, char *err, size_t errsz) {
  cJSON *old, *key;
  if (state_normalize(doc, err, errsz)) {
    cJSON_Delete(doc);
    return -1;
  }
  key = cJSON_GetObjectItemCaseSensitive(doc, "key");
  state_lock();
  old = state_root;
  state_root = doc;
  /* a state without a key keeps the key in force */
  if (cJSON_IsString(key)) {
    free(file_key);
    file_key = fake_strdup(key->valuestring);
  }
  state_unlock();
  cJSON_Delete(old);
  return 0;
}

int state_load_file(const char *path, char *err, size_t errsz) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long size;
  size_t got;
  cJSON *doc;
  const char *where;
  if (!f) {
    snprintf(err, errsz, "cannot open %s", path);
    return -1;
  }
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    snprintf(err, errsz, "cannot read %s", path);
    return -1;
  }
  buf = fake_xmalloc((size_t)size + 1);
  got = fread(buf, 1, (size_t)size, f);
  fclose(f);
  buf[got] = '\0';
  doc = cJSON_ParseWithOpts(buf, &where, 1);
  if (!doc) {
    snprintf(err, errsz, "%s: invalid JSON near byte %ld", path, (long)(where - buf));
    free(buf);
    return -1;
  }
  free(buf);
  return state_replace(doc, err, errsz);
}

char *state_print(void) {
  char *out;
  state_lock();
  if (state_root) {
    out = cJSON_PrintUnformatted(state_root);
  } else {
    out = fake_strdup("{\"accounts\":{},\"orgs\":{}}");
  }
  state_unlock();
  return out;
}

void state_free(void) {
  state_lock();
  cJSON_Delete(state_root);
  state_root = NULL;
  free(cli_key);
  free(file_key);
  cli_key = file_key = NULL;
  state_unlock();
}

cJSON *state_accounts(void) {
  return cJSON_GetObjectItemCaseSensitive(state_root, "accounts");
}

cJSON *state_account(const char *id) {
  return cJSON_GetObjectItemCaseSensitive(state_accounts(), id);
}

cJSON *state_org(const char *id) {
  return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(state_root, "orgs"), id);
}

int state_denied(const cJSON *account, const char *privilege) {
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(account, "deny")) {
    if (cJSON_IsString(d) && strcmp(d->valuestring, privilege) == 0)
      return 1;
  }
  return 0;
}
