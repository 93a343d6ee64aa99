#!/usr/bin/env python3
"""zerobus_get_api() covers every exported function, and nothing else.

usage: get_api_test.py LIBRARY ABI_XML

The table layout comes from the library's own debug info (ABI_XML: `abidw` of
LIBRARY, as check.sh writes it), not from a hand-kept list, and the mapping is by
name: member `x` <-> exported symbol `zerobus_x`. Checks:
  - zerobus_get_api(ZEROBUS_ABI_MAJOR) is non-NULL, struct_size equals the compiled
    sizeof(zerobus_api), abi_major equals ZEROBUS_ABI_MAJOR;
  - every member is non-NULL and equals dlsym() of zerobus_<member>;
  - every exported zerobus_* function except zerobus_get_api has a member;
  - zerobus_get_api() of any other generation (0, 2, -1, 1000) is NULL.
Prints one line per failed member and a summary; exits 1 on any failure.
"""
import ctypes
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ABI_MAJOR = 1


def exported_functions(lib):
    out = subprocess.run(["readelf", "--dyn-syms", "--wide", lib], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and re.match(r"^\d+:$", f[0]) and f[6] != "UND" and f[3] == "FUNC" \
                and f[4] != "LOCAL":
            names.add(f[7].split("@")[0])
    return names


def table_layout(xml_path):
    root = ET.parse(xml_path).getroot()
    for el in root.iter("class-decl"):
        if el.get("name") == "zerobus_api" and el.get("is-declaration-only") != "yes":
            members = [(dm.find("var-decl").get("name"), int(dm.get("layout-offset-in-bits")))
                       for dm in el.findall("data-member")]
            return int(el.get("size-in-bits")) // 8, members
    sys.exit("get_api_test: struct zerobus_api not found in " + xml_path)


def main():
    lib_path, xml_path = sys.argv[1], sys.argv[2]
    lib = ctypes.CDLL(lib_path)  # dlopen; attribute access below is dlsym
    lib.zerobus_get_api.restype = ctypes.c_void_p
    lib.zerobus_get_api.argtypes = [ctypes.c_int32]
    size, members = table_layout(xml_path)
    failures = []

    base = lib.zerobus_get_api(ABI_MAJOR)
    if not base:
        print("FAIL get_api: zerobus_get_api(%d) returned NULL" % ABI_MAJOR)
        return 1
    struct_size = ctypes.c_uint32.from_address(base).value
    abi_major = ctypes.c_int32.from_address(base + 4).value
    if struct_size != size:
        failures.append("struct_size %d != sizeof(zerobus_api) %d" % (struct_size, size))
    if abi_major != ABI_MAJOR:
        failures.append("abi_major %d != %d" % (abi_major, ABI_MAJOR))
    if [m[0] for m in members[:2]] != ["struct_size", "abi_major"]:
        failures.append("table does not start with struct_size, abi_major: %s" % members[:2])

    covered = set()
    for name, off_bits in members[2:]:
        ptr = ctypes.c_void_p.from_address(base + off_bits // 8).value
        sym = "zerobus_" + name
        try:
            want = ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value
        except AttributeError:
            failures.append("member %s: no exported symbol %s" % (name, sym))
            continue
        if not ptr:
            failures.append("member %s is NULL" % name)
        elif ptr != want:
            failures.append("member %s = %#x but dlsym(%s) = %#x" % (name, ptr, sym, want))
        covered.add(sym)

    exported = exported_functions(lib_path)
    missing = sorted(exported - covered - {"zerobus_get_api"})
    for sym in missing:
        failures.append("exported %s has no member %s in zerobus_api" % (sym, sym[8:]))

    for other in (0, 2, -1, 1000):
        if lib.zerobus_get_api(other):
            failures.append("zerobus_get_api(%d) is not NULL" % other)

    lib.zerobus_abi_version.restype = ctypes.c_int32
    if lib.zerobus_abi_version() != ABI_MAJOR:
        failures.append("zerobus_abi_version() = %d" % lib.zerobus_abi_version())

    for f in failures:
        print("  " + f)
    print("%s get_api: %d members checked against dlsym, %d exported functions, "
          "struct_size %d, %d problem(s)" % ("PASS" if not failures else "FAIL",
                                             len(members) - 2, len(exported), struct_size,
                                             len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
