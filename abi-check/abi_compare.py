#!/usr/bin/env python3
"""Decides whether an abidiff "change" (exit bit 4) is an allowed compatible extension.

usage: abi_compare.py BASELINE.abi.xml CURRENT.abi.xml
       abi_compare.py --rules CURRENT.abi.xml   (shape rules only, see rules())

abidiff marks only symbol removals as incompatible (bit 8); every other change
(reordered members, changed parameter types, grown structs) is bit 4, "a human must
review". libabigail's own suppressions cannot express "members appended at the end
and nothing else": a [suppress_type] with has_data_member_inserted_at = end also
hides reordered or retyped members (tests/selftest.sh shows it). So this script
compares the two abidw corpora itself, with types rendered by name (a struct is
"struct NAME", never expanded, so growing a struct does not change the pointers
to it), and allows only what README.md allows:
  - new functions (check.sh's symbol step checks their version node);
  - members appended after the old end of a size-prefixed struct
    (zerobus_api, zerobus_callbacks, zerobus_stream_stats, zerobus_option_desc) or of
    zerobus_event (its size travels as zerobus_stream_poll_events' event_size);
  - new enumerators (old ones keep their values; the enum keeps its size).
Everything else that differs is printed as a problem and the exit status is 1.
"""
import sys
import xml.etree.ElementTree as ET

SIZE_PREFIXED = {"zerobus_api", "zerobus_callbacks", "zerobus_stream_stats",
                 "zerobus_option_desc"}
# Structs that may grow at the end: the size-prefixed ones, and zerobus_event,
# whose size the caller passes separately (poll_events' event_size).
GROWABLE = SIZE_PREFIXED | {"zerobus_event"}


class Corpus:
    def __init__(self, path):
        root = ET.parse(path).getroot()
        self.types = {}      # id -> element (definitions win over declarations)
        self.functions = {}  # name -> function-decl element
        for el in root.iter():
            tid = el.get("id")
            if tid is not None and el.tag != "elf-symbol":
                old = self.types.get(tid)
                if old is None or (old.get("is-declaration-only") == "yes"
                                   and el.get("is-declaration-only") != "yes"):
                    self.types[tid] = el
            if el.tag == "function-decl" and el.get("elf-symbol-id"):
                self.functions[el.get("name")] = el
        # named public structs/unions/enums by name (definitions only). Only zerobus_*
        # types are the ABI: the corpus also holds types of internal translation units
        # (e.g. protobuf-c's) that no exported function reaches.
        self.records = {}
        self.enums = {}
        for el in self.types.values():
            if not el.get("name", "").startswith("zerobus_"):
                continue
            if el.tag in ("class-decl", "union-decl") and el.get("is-declaration-only") != "yes":
                self.records[el.get("name")] = el
            elif el.tag == "enum-decl":
                self.enums[el.get("name")] = el

    def render(self, tid, depth=0):
        """A canonical string for a type; records and enums by name only."""
        if tid is None:
            return "?none"
        if depth > 40:
            return "?deep"
        el = self.types.get(tid)
        if el is None:
            return "?unknown-id"
        t = el.tag
        if t == "type-decl":
            return el.get("name")
        if t in ("class-decl", "union-decl"):
            return ("union " if t == "union-decl" else "struct ") + el.get("name", "<anon>")
        if t == "enum-decl":
            return "enum " + el.get("name", "<anon>")
        if t == "typedef-decl":
            return "typedef %s=%s" % (el.get("name"), self.render(el.get("type-id"), depth + 1))
        if t == "pointer-type-def":
            return self.render(el.get("type-id"), depth + 1) + "*"
        if t == "reference-type-def":
            return self.render(el.get("type-id"), depth + 1) + "&"
        if t == "qualified-type-def":
            quals = [q for q in ("const", "volatile", "restrict") if el.get(q) == "yes"]
            return " ".join(quals) + " " + self.render(el.get("type-id"), depth + 1)
        if t == "array-type-def":
            dims = [s.get("length", "?") for s in el.findall("subrange")]
            return self.render(el.get("type-id"), depth + 1) + "".join("[%s]" % d for d in dims)
        if t == "function-type":
            return self.signature(el, depth + 1)
        return "?" + t

    def signature(self, el, depth=0):
        params = [self.render(p.get("type-id"), depth) if p.get("is-variadic") != "yes" else "..."
                  for p in el.findall("parameter")]
        ret = el.find("return")
        return "%s(%s)" % (self.render(ret.get("type-id") if ret is not None else None, depth),
                           ", ".join(params))

    def members(self, rec):
        out = []
        for dm in rec.findall("data-member"):
            var = dm.find("var-decl")
            out.append((var.get("name"), int(dm.get("layout-offset-in-bits", "0")),
                        self.render(var.get("type-id"))))
        return out


def rules(path):
    """The shape rules of /work/shared/ABI.md rule 1 and 5 that a corpus can show:
    public structs hold no enums, bools or bit-fields; no exported function is
    variadic or takes/returns a struct by value; size-prefixed structs start with
    uint32_t struct_size."""
    c = Corpus(path)
    problems = []
    for name, rec in sorted(c.records.items()):
        for dm in rec.findall("data-member"):
            var = dm.find("var-decl")
            t = c.render(var.get("type-id"))
            if "enum " in t.split("*")[0] and not t.strip().endswith("*"):
                problems.append("struct %s member %s is an enum (%s): use int32_t" % (
                    name, var.get("name"), t))
            if "_Bool" in t or t == "bool":
                problems.append("struct %s member %s is a bool" % (name, var.get("name")))
            if int(dm.get("layout-offset-in-bits", "0")) % 8 or var.get("bitfield") or \
                    dm.get("is-bitfield") == "yes":
                problems.append("struct %s member %s is a bit-field" % (name, var.get("name")))
        if name in SIZE_PREFIXED:
            first = c.members(rec)[:1]
            if not first or first[0][0] != "struct_size" or "uint32_t" not in first[0][2]:
                problems.append("size-prefixed struct %s does not start with uint32_t "
                                "struct_size" % name)
    for name, fn in sorted(c.functions.items()):
        sig = c.signature(fn)
        if "..." in sig:
            problems.append("function %s is variadic" % name)
        ret = fn.find("return")
        parts = [ret] + fn.findall("parameter") if ret is not None else fn.findall("parameter")
        for p in parts:
            t = c.render(p.get("type-id"))
            if t.startswith(("struct ", "union ")) or ("=struct " in t and not t.endswith("*")):
                problems.append("function %s passes a struct by value (%s)" % (name, t))
    for p in problems:
        print("problem: " + p)
    print("%d public structs, %d functions checked against the shape rules" % (
        len(c.records), len(c.functions)))
    return 1 if problems else 0


def main():
    if sys.argv[1] == "--rules":
        return rules(sys.argv[2])
    base, cur = Corpus(sys.argv[1]), Corpus(sys.argv[2])
    problems, notes = [], []

    for name, fn in sorted(base.functions.items()):
        if name not in cur.functions:
            problems.append("function %s removed" % name)
            continue
        a, b = base.signature(fn), cur.signature(cur.functions[name])
        if a != b:
            problems.append("function %s changed signature: %s -> %s" % (name, a, b))
    for name in sorted(set(cur.functions) - set(base.functions)):
        notes.append("added function %s %s" % (name, cur.signature(cur.functions[name])))

    for name, rec in sorted(base.records.items()):
        if name not in cur.records:
            problems.append("struct %s no longer defined in the public headers" % name)
            continue
        crec = cur.records[name]
        bm, cm = base.members(rec), cur.members(crec)
        bsize, csize = int(rec.get("size-in-bits", "0")), int(crec.get("size-in-bits", "0"))
        if cm[:len(bm)] != bm:
            for i, m in enumerate(bm):
                c = cm[i] if i < len(cm) else None
                if c != m:
                    problems.append("struct %s member #%d was %s@%d:%s, now %s" % (
                        name, i, m[0], m[1], m[2],
                        "%s@%d:%s" % c if c else "missing"))
                    break
            continue
        extra = cm[len(bm):]
        if csize == bsize and not extra:
            continue
        if name not in GROWABLE:
            problems.append("struct %s changed size %d -> %d bits; only size-prefixed structs "
                            "and zerobus_event may grow (it is neither)" % (name, bsize, csize))
            continue
        if csize < bsize:
            problems.append("struct %s shrank %d -> %d bits" % (name, bsize, csize))
            continue
        late = [m for m in extra if m[1] < bsize]
        if late:
            problems.append("struct %s: new member %s inside the old size" % (name, late[0][0]))
            continue
        notes.append("struct %s grew %d -> %d bits: appended %s" % (
            name, bsize, csize, ", ".join(m[0] for m in extra)))

    for name, en in sorted(base.enums.items()):
        if name not in cur.enums:
            problems.append("enum %s removed" % name)
            continue
        cen = cur.enums[name]
        bv = {e.get("name"): e.get("value") for e in en.findall("enumerator")}
        cv = {e.get("name"): e.get("value") for e in cen.findall("enumerator")}
        for k, v in bv.items():
            if cv.get(k) != v:
                problems.append("enum %s: %s was %s, now %s" % (name, k, v, cv.get(k, "missing")))
        bu, cu = en.find("underlying-type"), cen.find("underlying-type")
        if bu is not None and cu is not None and \
                base.render(bu.get("type-id")) != cur.render(cu.get("type-id")):
            problems.append("enum %s changed its underlying type" % name)
        added = sorted(set(cv) - set(bv))
        if added:
            notes.append("enum %s: added %s" % (name, ", ".join(added)))

    for n in notes:
        print("note: " + n)
    for p in problems:
        print("problem: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
