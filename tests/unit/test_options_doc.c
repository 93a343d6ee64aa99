/* docs/options.md lists every option exactly as zerobus_option_info() reports it.
 * Usage: test_options_doc <docs/options.md>  (or --print to emit the table rows) */
#include "internal.h"
#include "zb_test.h"

static void row(size_t i, char *out, size_t cap) {
  zerobus_option_desc d;
  memset(&d, 0, sizeof d);
  d.struct_size = sizeof d;
  zerobus_option_info(i, &d);
  snprintf(out, cap, "| `%s` | %s | `%s` | %s | %s |", d.name, d.type,
           *d.default_value ? d.default_value : "(unset)", d.scope, d.doc);
}

int main(int argc, char **argv) {
  char line[1024];
  if (argc > 1 && strcmp(argv[1], "--print") == 0) {
    for (size_t i = 0; i < zerobus_option_count(); i++) {
      row(i, line, sizeof line);
      puts(line);
    }
    return 0;
  }
  if (argc < 2) return 2;
  FILE *f = fopen(argv[1], "r");
  CHECK(f != NULL);
  if (!f) TEST_MAIN_END();
  static char doc[65536];
  size_t n = fread(doc, 1, sizeof doc - 1, f);
  doc[n] = '\0';
  fclose(f);
  for (size_t i = 0; i < zerobus_option_count(); i++) {
    row(i, line, sizeof line);
    CHECK_HAS(doc, line);
  }
  TEST_MAIN_END();
}
