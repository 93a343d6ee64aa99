/*
 * fuzz_options: zerobus_options_set / zerobus_options_get with random keys and
 * values, then zb_config_apply on the result.
 * Input: tokens separated by NUL bytes, taken as (key selector, value) pairs. A
 * key selector whose first byte is < 0xf0 names a real option (index = byte %
 * count); otherwise the rest of the token is the key itself.
 * Properties: never crashes; an unknown key is UNKNOWN_OPTION; a refused value
 * is INVALID_OPTION with a message and leaves the old value in place; an accepted
 * value reads back as a canonical text that is accepted again and is a fixed
 * point (set(get(v)) reads back the same text); zb_config_apply of any accepted
 * set of values either succeeds or names the problem (INVALID_OPTION).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = malloc(size + 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  copy[size] = 0;
  zerobus_options *o = NULL;
  FUZZ_CHECK(zerobus_options_new(&o) == ZEROBUS_OK && o, "options_new");
  size_t count = zerobus_option_count();
  char *p = copy, *end = copy + size;
  while (p < end) {
    char *sel = p;
    p += strlen(p) + 1;
    if (p > end) break;
    char *value = p;
    p += strlen(p) + 1;
    const char *key;
    int known = 1;
    if ((uint8_t)sel[0] < 0xf0 && sel[0]) {
      zerobus_option_desc d;
      memset(&d, 0, sizeof d);
      d.struct_size = sizeof d;
      FUZZ_CHECK(zerobus_option_info((uint8_t)sel[0] % count, &d) == ZEROBUS_OK && d.name,
                 "option_info");
      key = d.name;
    } else {
      key = sel[0] ? sel + 1 : sel;
      known = 0;
    }
    const char *before = NULL;
    zerobus_error *err = NULL;
    zerobus_status grc = zerobus_options_get(o, key, &before, &err);
    zerobus_error_destroy(err);
    char *before_copy = grc == ZEROBUS_OK ? strdup(before) : NULL;
    if (known) FUZZ_CHECK(grc == ZEROBUS_OK, "get of a listed key failed");

    err = NULL;
    zerobus_status rc = zerobus_options_set(o, key, value, &err);
    if (grc != ZEROBUS_OK) {
      FUZZ_CHECK(rc == ZEROBUS_ERR_UNKNOWN_OPTION, "unknown key '%s' gave %d", key, (int)rc);
    } else if (rc != ZEROBUS_OK) {
      FUZZ_CHECK(rc == ZEROBUS_ERR_INVALID_OPTION, "key %s value '%s' gave %d", key, value,
                 (int)rc);
      FUZZ_CHECK(err && zerobus_error_message(err)[0], "no message");
      const char *after = NULL;
      FUZZ_CHECK(zerobus_options_get(o, key, &after, NULL) == ZEROBUS_OK &&
                     strcmp(after, before_copy) == 0,
                 "refused value changed %s", key);
    } else {
      const char *canon = NULL;
      FUZZ_CHECK(zerobus_options_get(o, key, &canon, NULL) == ZEROBUS_OK && canon, "get after set");
      char *c1 = strdup(canon);
      zerobus_error *e2 = NULL;
      zerobus_status rc2 = zerobus_options_set(o, key, c1, &e2);
      FUZZ_CHECK(rc2 == ZEROBUS_OK, "canonical '%s' of %s='%s' refused: %s", c1, key, value,
                 zerobus_error_message(e2));
      const char *canon2 = NULL;
      FUZZ_CHECK(
          zerobus_options_get(o, key, &canon2, NULL) == ZEROBUS_OK && strcmp(canon2, c1) == 0,
          "canonical form of %s not a fixed point: '%s' -> '%s'", key, c1, canon2);
      zerobus_error_destroy(e2);
      free(c1);
    }
    zerobus_error_destroy(err);
    free(before_copy);
  }
  zb_config c;
  zb_config_defaults(&c);
  zerobus_error *err = NULL;
  zerobus_status rc = zb_config_apply(&c, o, "sdk,stream", &err);
  FUZZ_CHECK(
      rc == ZEROBUS_OK || (rc == ZEROBUS_ERR_INVALID_OPTION && zerobus_error_message(err)[0]),
      "config_apply rc %d", (int)rc);
  if (rc == ZEROBUS_OK) {
    FUZZ_CHECK(c.max_inflight_records >= 1 && c.max_inflight_bytes >= 1 && c.max_request_bytes >= 1,
               "limits must stay positive");
    FUZZ_CHECK(c.record_type == ZB_RECORD_TYPE_PROTO || c.record_type == ZB_RECORD_TYPE_JSON,
               "record_type");
  }
  zerobus_error_destroy(err);
  zb_config_free(&c);
  zerobus_options_destroy(o);
  free(copy);
  return 0;
}
