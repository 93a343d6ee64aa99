"""Generate a proto2 schema for a Unity Catalog table.

    python -m zerobus.tools.generate_proto --uc-endpoint https://<workspace> \\
        --client-id ID --client-secret SECRET --table cat.sch.tbl \\
        --output record.proto [--proto-msg AirQuality]

Gets an OAuth token (client credentials, scope all-apis) from
{uc-endpoint}/oidc/v1/token, reads the table's columns from
{uc-endpoint}/api/2.1/unity-catalog/tables/<name>, and writes one proto2 message
with a field per column. Type mapping (Delta -> proto2):

  TINYINT, BYTE, SMALLINT, SHORT, INT  int32      BIGINT, LONG           int64
  FLOAT                                float      DOUBLE                 double
  STRING, VARCHAR(n), CHAR(n)          string     BOOLEAN                bool
  BINARY                               bytes      DATE                   int32 (days)
  TIMESTAMP, TIMESTAMP_NTZ             int64 (microseconds since the epoch)
  ARRAY<T>                             repeated T MAP<K, V>              map<K, V>
  STRUCT<...>                          nested message
  VARIANT                              string (JSON text)

Nullable columns are `optional`, the others `required`. Field numbers start at 1
and skip 19000-19999 (reserved by protobuf). Types protobuf cannot express
(DECIMAL, INTERVAL, arrays of arrays, maps inside arrays, map values that are
arrays or maps, map keys that are not integers/strings/bools) are reported as
errors naming the column.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

__all__ = ["DeltaType", "parse_type", "generate_proto", "fetch_columns", "main",
           "SchemaError"]

_TIMEOUT_S = 30


class SchemaError(Exception):
    """A column type that cannot be mapped, or a malformed type text."""


# ---------------------------------------------------------------- type parsing


@dataclass
class DeltaType:
    kind: str  # "primitive", "array", "map", "struct"
    name: str = ""  # primitive: lower-case type name ("int", "varchar", ...)
    element: Optional["DeltaType"] = None  # array
    key: Optional["DeltaType"] = None  # map
    value: Optional["DeltaType"] = None  # map
    fields: List[Tuple[str, "DeltaType", bool]] = field(default_factory=list)  # struct


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> SchemaError:
        return SchemaError("cannot parse type %r at position %d: %s" % (self.text, self.pos, what))

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.error("expected %r" % ch)
        self.pos += 1

    def word(self) -> str:
        self.ws()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
        if not m:
            raise self.error("expected a name")
        self.pos = m.end()
        return m.group(0)

    def field_name(self) -> str:
        self.ws()
        if self.peek() == "`":
            end = self.text.find("`", self.pos + 1)
            if end < 0:
                raise self.error("unterminated `name`")
            name = self.text[self.pos + 1:end]
            self.pos = end + 1
            return name
        m = re.compile(r"[^:\s,<>]+").match(self.text, self.pos)
        if not m:
            raise self.error("expected a field name")
        self.pos = m.end()
        return m.group(0)

    def parse(self) -> DeltaType:
        t = self.type()
        if self.peek():
            raise self.error("unexpected text after the type")
        return t

    def type(self) -> DeltaType:
        name = self.word().lower()
        if name == "array":
            self.expect("<")
            elem = self.type()
            self.expect(">")
            return DeltaType("array", element=elem)
        if name == "map":
            self.expect("<")
            key = self.type()
            self.expect(",")
            value = self.type()
            self.expect(">")
            return DeltaType("map", key=key, value=value)
        if name == "struct":
            self.expect("<")
            fields = []
            if self.peek() != ">":
                while True:
                    fname = self.field_name()
                    self.expect(":")
                    ftype = self.type()
                    nullable = self.field_suffix()
                    fields.append((fname, ftype, nullable))
                    if self.peek() == ",":
                        self.pos += 1
                        continue
                    break
            self.expect(">")
            return DeltaType("struct", fields=fields)
        if self.peek() == "(":  # varchar(10), decimal(10,2)
            end = self.text.find(")", self.pos)
            if end < 0:
                raise self.error("unterminated parameters")
            self.pos = end + 1
        return DeltaType("primitive", name=name)

    def field_suffix(self) -> bool:
        """Optional NOT NULL and COMMENT '...' after a struct field's type."""
        nullable = True
        while True:
            self.ws()
            rest = self.text[self.pos:]
            m = re.match(r"(?i)not\s+null\b", rest)
            if m:
                nullable = False
                self.pos += m.end()
                continue
            m = re.match(r"(?i)comment\s+'((?:[^'\\]|\\.)*)'", rest)
            if m:
                self.pos += m.end()
                continue
            return nullable


def parse_type(type_text: str) -> DeltaType:
    """Parses a Unity Catalog type_text such as "map<string,array<int>>"."""
    return _Parser(type_text).parse()


# ------------------------------------------------------------------ generation

_PRIMITIVES = {
    "tinyint": "int32", "byte": "int32", "smallint": "int32", "short": "int32",
    "int": "int32", "integer": "int32",
    "bigint": "int64", "long": "int64",
    "float": "float", "real": "float",
    "double": "double",
    "string": "string", "varchar": "string", "char": "string",
    "boolean": "bool",
    "binary": "bytes",
    "date": "int32",
    "timestamp": "int64", "timestamp_ntz": "int64",
    "variant": "string",
}
_MAP_KEYS = {"int32", "int64", "string", "bool"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _field_numbers() -> Iterator[int]:
    n = 1
    while True:
        if 19000 <= n <= 19999:
            n = 20000
        yield n
        n += 1


def _camel(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not out or not (out[0].isalpha() or out[0] == "_"):
        out = "M" + out
    return out


class _MessageWriter:
    def __init__(self, table: str) -> None:
        self.table = table

    def message(self, name: str, columns: Sequence[Tuple[str, DeltaType, bool]], indent: int,
                path: str) -> List[str]:
        pad = "  " * indent
        lines = [pad + "message %s {" % name]
        nested_names = {name}
        numbers = _field_numbers()
        body: List[str] = []
        nested: List[str] = []
        for col_name, dtype, nullable in columns:
            where = "%s%s" % (path, col_name)
            if not _IDENT.match(col_name):
                raise SchemaError("column %s: %r is not a valid protobuf field name"
                                  % (where, col_name))
            label = "optional" if nullable else "required"
            num = next(numbers)

            def nested_message(t: DeltaType, base: str) -> str:
                mname = _camel(base)
                while mname in nested_names:
                    mname += "_"
                nested_names.add(mname)
                nested.extend(self.message(mname, t.fields, indent + 1, where + "."))
                return mname

            if dtype.kind == "primitive":
                body.append("%s  %s %s %s = %d;" % (pad, label, self.primitive(dtype, where),
                                                   col_name, num))
            elif dtype.kind == "struct":
                mname = nested_message(dtype, col_name)
                body.append("%s  %s %s %s = %d;" % (pad, label, mname, col_name, num))
            elif dtype.kind == "array":
                elem = dtype.element
                assert elem is not None
                if elem.kind == "primitive":
                    etype = self.primitive(elem, where + "[]")
                elif elem.kind == "struct":
                    etype = nested_message(elem, col_name + "_element")
                else:
                    raise SchemaError("column %s: array<%s> cannot be expressed in protobuf "
                                      "(repeated fields cannot hold arrays or maps)"
                                      % (where, elem.kind))
                body.append("%s  repeated %s %s = %d;" % (pad, etype, col_name, num))
            else:  # map
                key, value = dtype.key, dtype.value
                assert key is not None and value is not None
                if key.kind != "primitive":
                    raise SchemaError("column %s: map keys must be a primitive type" % where)
                ktype = self.primitive(key, where + ".key")
                if ktype not in _MAP_KEYS:
                    raise SchemaError("column %s: map key type %s is not allowed by protobuf "
                                      "(use an integer, string or boolean key)" % (where, key.name))
                if value.kind == "primitive":
                    vtype = self.primitive(value, where + ".value")
                elif value.kind == "struct":
                    vtype = nested_message(value, col_name + "_value")
                else:
                    raise SchemaError("column %s: map values cannot be %ss in protobuf"
                                      % (where, value.kind))
                body.append("%s  map<%s, %s> %s = %d;" % (pad, ktype, vtype, col_name, num))
        lines.extend(nested)
        lines.extend(body)
        lines.append(pad + "}")
        return lines

    def primitive(self, t: DeltaType, where: str) -> str:
        p = _PRIMITIVES.get(t.name)
        if p is None:
            raise SchemaError("column %s: unsupported Delta type %s (no protobuf mapping)"
                              % (where, t.name.upper()))
        return p


def generate_proto(message_name: str, columns: Sequence[dict], table: str = "") -> str:
    """proto2 source for `columns` (UC column objects with name, type_text,
    nullable)."""
    if not _IDENT.match(message_name):
        raise SchemaError("%r is not a valid protobuf message name (use --proto-msg)"
                          % message_name)
    parsed = []
    for col in columns:
        name = col.get("name")
        text = col.get("type_text") or col.get("type_name")
        if not name or not text:
            raise SchemaError("a column without name or type_text: %r" % (col,))
        try:
            dtype = parse_type(str(text))
        except SchemaError as e:
            raise SchemaError("column %s: %s" % (name, e)) from None
        parsed.append((name, dtype, bool(col.get("nullable", True))))
    if not parsed:
        raise SchemaError("table %s has no columns" % table)
    lines = ['syntax = "proto2";', ""]
    lines.extend(_MessageWriter(table).message(message_name, parsed, 0, ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------- network


def _http(req: urllib.request.Request, what: str) -> dict:
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
            body = resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:300].decode("utf-8", "replace")
        raise SchemaError("%s failed: HTTP %d %s" % (what, e.code, detail.strip())) from None
    except urllib.error.URLError as e:
        raise SchemaError("%s failed: %s" % (what, e.reason)) from None
    try:
        return json.loads(body)
    except ValueError:
        raise SchemaError("%s returned a body that is not JSON" % what) from None


def fetch_token(uc_endpoint: str, client_id: str, client_secret: str) -> str:
    """OAuth client-credentials token (scope all-apis) from {uc}/oidc/v1/token."""
    basic = base64.b64encode(("%s:%s" % (client_id, client_secret)).encode()).decode()
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "all-apis"})
    req = urllib.request.Request(
        uc_endpoint + "/oidc/v1/token", data=form.encode(), method="POST",
        headers={"Authorization": "Basic " + basic,
                 "Content-Type": "application/x-www-form-urlencoded"})
    body = _http(req, "token request to %s/oidc/v1/token" % uc_endpoint)
    token = body.get("access_token") if isinstance(body, dict) else None
    if not token:
        raise SchemaError("the token endpoint answered without an access_token")
    return str(token)


def fetch_columns(uc_endpoint: str, token: str, table: str) -> List[dict]:
    url = "%s/api/2.1/unity-catalog/tables/%s" % (uc_endpoint, urllib.parse.quote(table, safe=""))
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    body = _http(req, "Unity Catalog request for table %s" % table)
    cols = body.get("columns") if isinstance(body, dict) else None
    if not isinstance(cols, list):
        raise SchemaError("Unity Catalog returned no columns for table %s" % table)
    return cols


# ------------------------------------------------------------------------ CLI


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m zerobus.tools.generate_proto",
        description="Generate a proto2 schema from a Unity Catalog table.")
    ap.add_argument("--uc-endpoint", required=True, help="workspace URL (https://...)")
    ap.add_argument("--client-id", required=True, help="service principal application id")
    ap.add_argument("--client-secret", required=True, help="service principal secret")
    ap.add_argument("--table", required=True, help="catalog.schema.table")
    ap.add_argument("--output", required=True, help="path of the .proto file to write")
    ap.add_argument("--proto-msg", default=None,
                    help="message name (default: the table's name)")
    args = ap.parse_args(argv)

    uc = args.uc_endpoint.rstrip("/")
    if not re.match(r"^https?://", uc):
        uc = "https://" + uc
    parts = args.table.split(".")
    if len(parts) != 3 or not all(parts):
        print("error: --table must be catalog.schema.table", file=sys.stderr)
        return 2
    message = args.proto_msg or parts[2]
    try:
        token = fetch_token(uc, args.client_id, args.client_secret)
        columns = fetch_columns(uc, token, args.table)
        source = generate_proto(message, columns, args.table)
    except SchemaError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(source)
    print("Wrote %s (message %s, %d columns)" % (args.output, message, len(columns)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
