#!/usr/bin/env python3
"""Applies one named ABI mutation to a header / version script (for selftest.sh).

usage: mutate.py CASE HEADER MAPFILE EXTRA_C
EXTRA_C receives additional C source to link into the stub (empty when unused).
Each edit must find its anchor text, so a header rewrite cannot silently turn a
case into a no-op.
"""
import re
import sys

case, header, mapfile, extra_c = sys.argv[1:5]
h = open(header).read()
m = open(mapfile).read()
extra = ""


def edit(text, old, new):
    if old not in text:
        sys.exit(f"mutate.py {case}: anchor not found: {old!r}")
    return text.replace(old, new, 1)


NEW_DECL = "ZEROBUS_API int32_t zerobus_selftest_added(int32_t x);\n"
API_END = "} zerobus_api;"
GET_API = "ZEROBUS_API const zerobus_api *zerobus_get_api("

if case == "unchanged":
    pass
elif case in ("append_function", "new_symbol_in_released_node"):
    h = edit(h, GET_API, NEW_DECL + GET_API)
    h = edit(h, API_END, "  int32_t (*selftest_added)(int32_t);\n" + API_END)
    if case == "append_function":
        m += "\nZEROBUS_1.1 {\n  global:\n    zerobus_selftest_added;\n} ZEROBUS_1.0;\n"
elif case == "append_function_without_member":
    h = edit(h, GET_API, NEW_DECL + GET_API)
    m += "\nZEROBUS_1.1 {\n  global:\n    zerobus_selftest_added;\n} ZEROBUS_1.0;\n"
elif case == "append_callback_member":
    h = edit(h, "} zerobus_callbacks;", "  void (*on_selftest)(void *user_data);\n} zerobus_callbacks;")
elif case == "append_stats_member":
    h = edit(h, "} zerobus_stream_stats;", "  int64_t selftest_counter;\n} zerobus_stream_stats;")
elif case == "append_status_code":
    # after the last enumerator, whatever it is (the baseline may have grown)
    h2 = re.sub(r"(\S)(\s*/\*[^*]*\*/)?\n\} zerobus_status;",
                r"\1,\2\n  ZEROBUS_ERR_SELFTEST = 9999\n} zerobus_status;", h, count=1)
    if h2 == h:
        sys.exit("mutate.py append_status_code: end of zerobus_status not found")
    h = h2
elif case == "leak_dependency_symbol":
    extra = '__attribute__((visibility("default"))) int grpc_selftest_leak(void) { return 0; }\n'
    m = edit(m, "zerobus_*;", "zerobus_*;\n    grpc_selftest_leak;")
elif case == "unexported_declaration":
    h = edit(h, GET_API, "ZEROBUS_API int32_t zerobus_selftest_missing(void);\n" + GET_API)
    m = edit(m, "local:\n", "local:\n    zerobus_selftest_missing;\n")
elif case in ("remove_function", "remove_function_abidiff"):
    h = edit(h, "ZEROBUS_API int32_t zerobus_stream_wakeup_fd(zerobus_stream *s);", "")
    h = edit(h, "  int32_t (*stream_wakeup_fd)(zerobus_stream *);\n", "")
elif case == "reorder_callbacks":
    ack = "  void (*on_ack)(void *user_data, int64_t offset);\n"
    err = "  void (*on_error)(void *user_data, int64_t offset, const zerobus_error *err);\n"
    h = edit(h, ack, "@@ACK@@")
    h = edit(h, err, ack)
    h = edit(h, "@@ACK@@", err)
elif case == "insert_stats_member_middle":
    h = edit(h, "  uint32_t struct_size;\n  int32_t state;\n",
             "  uint32_t struct_size;\n  int32_t state;\n  int64_t selftest_counter;\n")
elif case == "grow_event_struct":
    h = edit(h, "} zerobus_event;", "  int64_t selftest;\n} zerobus_event;")
elif case == "insert_event_member_middle":
    h = edit(h, "typedef struct zerobus_event {\n  int32_t kind;\n",
             "typedef struct zerobus_event {\n  int32_t kind;\n  int32_t selftest;\n")
elif case == "change_parameter_type":
    h = edit(h, "zerobus_stream_poll(zerobus_stream *s, int32_t timeout_ms);",
             "zerobus_stream_poll(zerobus_stream *s, int64_t timeout_ms);")
    h = edit(h, "int32_t (*stream_poll)(zerobus_stream *, int32_t);",
             "int32_t (*stream_poll)(zerobus_stream *, int64_t);")
elif case == "change_macro_value":
    h = edit(h, "#define ZEROBUS_EVENT_ACK 1 ", "#define ZEROBUS_EVENT_ACK 7 ")
elif case == "renumber_enum":
    h = edit(h, "ZEROBUS_LOG_TRACE = 5", "ZEROBUS_LOG_TRACE = 6")
elif case == "enum_member":
    h = edit(h, "} zerobus_stream_stats;", "  zerobus_status selftest_status;\n} zerobus_stream_stats;")
elif case == "bool_member":
    h = edit(h, "} zerobus_callbacks;", "  _Bool selftest_flag;\n} zerobus_callbacks;")
elif case == "variadic_function":
    h = edit(h, GET_API, "ZEROBUS_API int32_t zerobus_selftest_log(const char *fmt, ...);\n" + GET_API)
    h = edit(h, API_END, "  int32_t (*selftest_log)(const char *, ...);\n" + API_END)
    m += "\nZEROBUS_1.1 {\n  global:\n    zerobus_selftest_log;\n} ZEROBUS_1.0;\n"
elif case == "soname_bump":
    pass
elif case == "header_not_cxx":
    h = edit(h, 'extern "C" {\n#endif\n',
             'extern "C" {\n#endif\ntypedef struct zerobus_selftest { int class; } zerobus_selftest;\n')
elif case == "header_not_self_contained":
    h = edit(h, "#include <stddef.h>\n", "")
else:
    sys.exit(f"mutate.py: unknown case {case}")

open(header, "w").write(h)
open(mapfile, "w").write(m)
open(extra_c, "w").write(extra)
