/*
 * fuzz_token: zb_token_parse_response (the OAuth token endpoint's JSON body).
 * Properties: never crashes; success gives a non-empty token equal to the body's
 * access_token and 0 <= expires_in < 1e12; failure is TOKEN (not retryable) with
 * a message that never contains the access_token value.
 */
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *body = malloc(size ? size : 1);
  if (!body) return 0;
  memcpy(body, data, size);
  char *token = NULL;
  int64_t expires = -7;
  zerobus_error *err = NULL;
  zerobus_status rc = zb_token_parse_response(body, size, &token, &expires, &err);

  /* what a reference reading of the body says */
  char *ref_token = NULL;
  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  if (root && cJSON_IsObject(root)) {
    cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    if (cJSON_IsString(t) && t->valuestring && *t->valuestring) ref_token = strdup(t->valuestring);
  }
  cJSON_Delete(root);

  if (rc == ZEROBUS_OK) {
    FUZZ_CHECK(err == NULL, "error set on success");
    FUZZ_CHECK(token && *token, "empty token accepted");
    FUZZ_CHECK(ref_token && strcmp(ref_token, token) == 0,
               "token differs from the body's access_token");
    FUZZ_CHECK(expires >= 0 && expires < 1000000000000LL, "expires_in %lld", (long long)expires);
  } else {
    FUZZ_CHECK(token == NULL, "token returned on failure");
    FUZZ_CHECK(rc == ZEROBUS_ERR_TOKEN, "rc %d", (int)rc);
    FUZZ_CHECK(err && zerobus_error_code(err) == (int32_t)rc && !zerobus_error_retryable(err),
               "error object");
    /* the fixed messages hold no digits: a token with one can only appear by leaking */
    if (ref_token && strlen(ref_token) >= 8 && strpbrk(ref_token, "0123456789"))
      FUZZ_CHECK(strstr(zerobus_error_message(err), ref_token) == NULL,
                 "token leaked into the message");
  }
  zerobus_error_destroy(err);
  zb_secret_free(token);
  free(ref_token);
  free(body);
  return 0;
}
