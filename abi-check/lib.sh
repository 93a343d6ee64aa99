# Helpers shared by check.sh and update-baseline.sh (sourced, not run).

# The exported (defined, non-local) dynamic symbols of $1 as "name version type",
# sorted. The ABS OBJECT entries that name the version nodes themselves are skipped.
exported_symbols() {
  readelf --dyn-syms --wide "$1" | awk '
    $1 ~ /^[0-9]+:$/ && $7 != "UND" && $5 != "LOCAL" && NF >= 8 {
      name = $8; ver = "-"
      if (index(name, "@")) { split(name, p, "@+"); name = p[1]; ver = p[2] }
      if ($7 == "ABS" && $4 == "OBJECT" && ver == "-" && name ~ /^[A-Z0-9_.]+$/) next
      print name, ver, $4
    }' | LC_ALL=C sort
}

# abidw of library $1 restricted to the public headers in $2, written to $3.
# Stable output: no corpus path, hashed type ids, no undefined (imported) symbols.
abi_dump() {
  abidw --headers-dir "$2" --drop-private-types --drop-undefined-syms --no-corpus-path \
    --type-id-style hash --out-file "$3" "$1"
}

# The function names a public header declares (ZEROBUS_API ... zerobus_x(...)), sorted.
declared_functions() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
names = re.findall(r"ZEROBUS_API\s[^;(]*?\b(zerobus_\w+)\s*\(", text)
print("\n".join(sorted(set(names))))
PY
}
