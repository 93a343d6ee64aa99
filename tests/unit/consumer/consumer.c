/* A program built against an installed libzerobus (pkg-config or find_package):
 * uses only the public header and checks a few answers. */
#include <stdio.h>
#include <string.h>

#include <zerobus_abi.h>

int main(void) {
  const zerobus_api *api = zerobus_get_api(ZEROBUS_ABI_MAJOR);
  if (!api || api->struct_size != sizeof *api) return 1;
  zerobus_options *o = NULL;
  zerobus_error *err = NULL;
  const char *v = NULL;
  if (api->options_new(&o) != ZEROBUS_OK) return 2;
  if (zerobus_options_set(o, "recovery_retries", "7", &err) != ZEROBUS_OK) return 3;
  if (zerobus_options_get(o, "recovery_retries", &v, &err) != ZEROBUS_OK || strcmp(v, "7"))
    return 4;
  if (zerobus_options_set(o, "no_such_key", "1", &err) != ZEROBUS_ERR_UNKNOWN_OPTION) return 5;
  zerobus_error_destroy(err);
  zerobus_options_destroy(o);
  printf("libzerobus %s abi %d %s\n", zerobus_version(), (int)zerobus_abi_version(),
         zerobus_status_name(ZEROBUS_ERR_QUEUE_FULL));
  return 0;
}
