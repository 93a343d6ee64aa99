#!/usr/bin/env python3
"""Writes a stub C implementation of every function a zerobus_abi.h declares.

Used by selftest.sh to build fake libraries from mutated headers, so the ABI gate
(check.sh) can be shown to catch each kind of break. The stubs return 0/NULL;
zerobus_get_api returns a table filled by name (member x <-> zerobus_x).

usage: make_stub.py HEADER > stub.c
env (to build broken tables for the get_api self-test):
  STUB_MEMBER_OVERRIDE="member=expr"  fill one member with expr (e.g. NULL)
  STUB_GET_API_ANY=1                   zerobus_get_api returns the table for any major
"""
import os
import re
import sys

text = open(sys.argv[1]).read()
out = ['#include "zerobus_abi.h"', "#include <stddef.h>"]
for m in re.finditer(r"ZEROBUS_API\s+([^;]*?)\b(zerobus_\w+)\s*\((.*?)\);", text, re.S):
    ret, name, params = m.group(1).strip(), m.group(2), m.group(3)
    if name == "zerobus_get_api":
        continue
    body = "" if ret == "void" else f"return ({ret})0;"
    if name == "zerobus_abi_version":
        body = "return ZEROBUS_ABI_MAJOR;"
    out.append(f"{ret} {name}({params}) {{ {body} }}")
table = text[text.index("typedef struct zerobus_api {"):text.index("} zerobus_api;")]
members = re.findall(r"\(\*(\w+)\)\(", table)
override = dict([os.environ["STUB_MEMBER_OVERRIDE"].split("=", 1)]) \
    if os.environ.get("STUB_MEMBER_OVERRIDE") else {}
out.append("static const zerobus_api api = { sizeof(zerobus_api), ZEROBUS_ABI_MAJOR, "
           + ", ".join(override.get(m, "zerobus_" + m) for m in members) + " };")
cond = "1" if os.environ.get("STUB_GET_API_ANY") else "m == ZEROBUS_ABI_MAJOR"
out.append("const zerobus_api *zerobus_get_api(int32_t m) "
           "{ (void)m; return %s ? &api : NULL; }" % cond)
print("\n".join(out))
