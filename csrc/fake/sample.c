/* Deterministic sample organization for --sample N: varied token ages relative to now. */
#include "fake.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

static const char *const first_names[] = {"Ada",    "Grace",   "Linus",  "Margaret",
                                          "Ken",    "Barbara", "Dennis", "Frances",
                                          "Edsger", "Radia",   "Alan",   "Hedy"};
static const char *const last_names[] = {"Lovelace", "Hopper",  "Torvalds", "Hamilton", "Thompson",
                                         "Liskov",   "Ritchie", "Allen",    "Dijkstra", "Perlman",
                                         "Turing",   "Lamarr",  "Knuth"};
static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Asia/Tokyo",
                                    "Australia/Sydney", "UTC"};
static const char *const jobs[] = {"Engineer", "Site Reliability Engineer", "Product Manager",
                                   "Designer", "Support Lead"};
static const char *const labels[] = {"CI",        "Jira automation", "Backup script",
                                     "Grafana",   "Personal laptop", "Terraform",
                                     "Slack bot", "Old migration"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* xorshift32: the same N always yields the same accounts and tokens */
static unsigned next_rand(unsigned *s) {
  unsigned x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

static void add_time(cJSON *obj, const char *name, long long ms) {
  char buf[40];
  fake_iso_time(ms, buf, sizeof buf);
  cJSON_AddStringToObject(obj, name, buf);
}

static cJSON *make_token(unsigned *rng, int account, int n, long long now) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  char id[32];
  int k;
  unsigned kind = next_rand(rng) % 5;
  long long last = 0, created, expiry = 0;
  cJSON *t = cJSON_CreateObject();

  memcpy(id, "asp_", 4);
  for (k = 0; k < 16; k++)
    id[4 + k] = alphabet[next_rand(rng) % (sizeof alphabet - 1)];
  id[20] = '\0';
  cJSON_AddStringToObject(t, "id", id);
  cJSON_AddStringToObject(t, "label", labels[(unsigned)(account * 3 + n) % COUNT(labels)]);

  switch (kind) {
  case 0: /* never used */
    break;
  case 1: /* stale: last used more than 90 days ago */
    last = now - (91 + (long long)(next_rand(rng) % 300)) * DAY_MS;
    break;
  case 2: /* in use */
    last = now - (long long)(next_rand(rng) % 30) * DAY_MS -
           (long long)(next_rand(rng) % 86400) * 1000;
    break;
  case 3: /* in use and expiring within two weeks */
    last = now - (long long)(next_rand(rng) % 5) * DAY_MS;
    expiry = now + (1 + (long long)(next_rand(rng) % 14)) * DAY_MS;
    break;
  default: /* in use, explicit null expiry (clients must treat null as absent) */
    last = now - (long long)(next_rand(rng) % 60) * DAY_MS;
    break;
  }
  created = (last ? last : now) - (1 + (long long)(next_rand(rng) % 400)) * DAY_MS;
  add_time(t, "createdAt", created);
  if (last)
    add_time(t, "lastAccess", last);
  if (expiry)
    add_time(t, "expiry", expiry);
  else if (kind == 4)
    cJSON_AddNullToObject(t, "expiry");
  return t;
}

cJSON *sample_state(int accounts) {
  cJSON *root = cJSON_CreateObject();
  cJSON *accts = cJSON_AddObjectToObject(root, "accounts");
  cJSON *orgs = cJSON_AddObjectToObject(root, "orgs");
  cJSON *org = cJSON_AddObjectToObject(orgs, "sample-org");
  cJSON *users = cJSON_AddArrayToObject(org, "users");
  cJSON *restricted = cJSON_AddObjectToObject(orgs, "sample-org-restricted");
  cJSON *rusers = cJSON_AddArrayToObject(restricted, "users");
  unsigned rng = 0x9e3779b9u;
  long long now = fake_now_ms() / 1000 * 1000;
  int i;

  cJSON_AddTrueToObject(org, "api_access");
  cJSON_AddFalseToObject(restricted, "api_access");
  for (i = 1; i <= accounts; i++) {
    char id[64], name[64], email[96], *p;
    const char *first = first_names[(unsigned)i % COUNT(first_names)];
    const char *last = last_names[(unsigned)(i * 7) % COUNT(last_names)];
    cJSON *acct, *tokens, *deny, *profile, *ext;
    int ntok, k;

    snprintf(id, sizeof id, "557057:00000000-0000-4000-8000-%012d", i);
    snprintf(name, sizeof name, "%s %s", first, last);
    snprintf(email, sizeof email, "%s.%s%d@example.com", first, last, i);
    for (p = email; *p; p++)
      *p = (char)tolower((unsigned char)*p);

    acct = cJSON_AddObjectToObject(accts, id);
    tokens = cJSON_AddArrayToObject(acct, "tokens");
    /* the first account always has a mix, so a small sample still shows every case */
    ntok = i == 1 ? 4 : (int)(next_rand(&rng) % 5);
    for (k = 0; k < ntok; k++)
      cJSON_AddItemToArray(tokens, make_token(&rng, i, k, now));
    deny = cJSON_AddArrayToObject(acct, "deny");
    if (i == 2 || i == 7)
      cJSON_AddItemToArray(deny, cJSON_CreateString("apiToken.delete"));
    cJSON_AddBoolToObject(acct, "unverified", 0);
    cJSON_AddStringToObject(acct, "status", (i % 13 == 0) ? "inactive" : "active");

    profile = cJSON_AddObjectToObject(acct, "profile");
    cJSON_AddStringToObject(profile, "account_id", id);
    cJSON_AddStringToObject(profile, "name", name);
    cJSON_AddStringToObject(profile, "nickname", first);
    cJSON_AddStringToObject(profile, "email", email);
    cJSON_AddStringToObject(profile, "account_type", "atlassian");
    cJSON_AddStringToObject(profile, "account_status", (i % 13 == 0) ? "inactive" : "active");
    cJSON_AddStringToObject(profile, "zoneinfo", zones[(unsigned)i % COUNT(zones)]);
    cJSON_AddStringToObject(profile, "locale", "en-US");
    ext = cJSON_AddObjectToObject(profile, "extended_profile");
    cJSON_AddStringToObject(ext, "job_title", jobs[(unsigned)i % COUNT(jobs)]);

    cJSON_AddItemToArray(users, cJSON_CreateString(id));
    if (i <= 3)
      cJSON_AddItemToArray(rusers, cJSON_CreateString(id));
  }
  return root;
}
