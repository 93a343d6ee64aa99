"""generate_proto: type mapping, errors, and the CLI against zerobus-local's UC."""
import subprocess
import sys

import pytest

from conftest import CLIENT_ID, CLIENT_SECRET, compile_proto_file
from zerobus.sdk.shared import TableProperties
from zerobus.tools.generate_proto import SchemaError, generate_proto, parse_type


def run_tool(server, table, out, *extra, secret=CLIENT_SECRET):
    return subprocess.run(
        [sys.executable, "-m", "zerobus.tools.generate_proto", "--uc-endpoint", server.http_url,
         "--client-id", CLIENT_ID, "--client-secret", secret, "--table", table,
         "--output", str(out), *extra], capture_output=True, text=True, timeout=60)


def test_parse_type():
    t = parse_type("struct<a:int,b:array<map<string,bigint>>, `c d`:string NOT NULL>")
    assert t.kind == "struct"
    assert [f[0] for f in t.fields] == ["a", "b", "c d"]
    assert t.fields[1][1].element.kind == "map"
    assert t.fields[2][2] is False
    assert parse_type("DECIMAL(10,2)").name == "decimal"
    with pytest.raises(SchemaError):
        parse_type("array<int")


def test_mapping_of_every_type():
    cols = [
        {"name": "a", "type_text": "tinyint", "nullable": True},
        {"name": "b", "type_text": "smallint", "nullable": False},
        {"name": "c", "type_text": "bigint", "nullable": True},
        {"name": "d", "type_text": "float", "nullable": True},
        {"name": "e", "type_text": "double", "nullable": True},
        {"name": "f", "type_text": "varchar(3)", "nullable": True},
        {"name": "g", "type_text": "boolean", "nullable": True},
        {"name": "h", "type_text": "binary", "nullable": True},
        {"name": "i", "type_text": "date", "nullable": True},
        {"name": "j", "type_text": "timestamp_ntz", "nullable": True},
        {"name": "k", "type_text": "variant", "nullable": True},
        {"name": "l", "type_text": "array<struct<x:int>>", "nullable": True},
        {"name": "m", "type_text": "map<string,struct<y:long>>", "nullable": True},
    ]
    src = generate_proto("T", cols)
    assert src.startswith('syntax = "proto2";')
    for line in ["optional int32 a = 1;", "required int32 b = 2;", "optional int64 c = 3;",
                 "optional float d = 4;", "optional double e = 5;", "optional string f = 6;",
                 "optional bool g = 7;", "optional bytes h = 8;", "optional int32 i = 9;",
                 "optional int64 j = 10;", "optional string k = 11;",
                 "repeated LElement l = 12;", "map<string, MValue> m = 13;",
                 "message LElement {", "optional int32 x = 1;", "message MValue {",
                 "optional int64 y = 1;"]:
        assert line in src, line


def test_field_numbers_skip_reserved_range():
    cols = [{"name": "c%d" % i, "type_text": "int", "nullable": True} for i in range(19001)]
    src = generate_proto("Wide", cols)
    assert "optional int32 c18998 = 18999;" in src
    assert "optional int32 c18999 = 20000;" in src
    assert "optional int32 c19000 = 20001;" in src
    assert " = 19000;" not in src and " = 19999;" not in src


@pytest.mark.parametrize("type_text,word", [
    ("decimal(10,2)", "DECIMAL"), ("interval day", "cannot parse"),
    ("array<array<int>>", "array<array>"), ("map<string,array<int>>", "map values"),
    ("map<double,int>", "map key type double"), ("array<map<string,int>>", "array<map>"),
])
def test_unsupported_types(type_text, word):
    with pytest.raises(SchemaError) as ei:
        generate_proto("T", [{"name": "col", "type_text": type_text, "nullable": True}])
    assert "col" in str(ei.value) and word in str(ei.value)


def test_cli_all_types_roundtrip(server, sdk, tmp_path):
    out = tmp_path / "alltypes.proto"
    r = run_tool(server, "main.default.all_types", out, "--proto-msg", "AllTypes")
    assert r.returncode == 0, r.stderr
    src = out.read_text()
    assert "message AllTypes {" in src and "required int32 c_req" in src
    mod = compile_proto_file(str(out), str(tmp_path))
    msg = mod.AllTypes(c_tinyint=1, c_byte=2, c_smallint=3, c_short=4, c_int=5, c_bigint=6,
                       c_long=7, c_float=1.5, c_double=2.5, c_string="s", c_varchar="v",
                       c_boolean=True, c_binary=b"\x00\x01", c_date=19000,
                       c_timestamp=1700000000000000, c_timestamp_ntz=1, c_variant='{"k":1}',
                       c_req=9, c_array=["x", "y"])
    msg.c_array_struct.add(x=1, y="one")
    msg.c_map["k"] = 10
    msg.c_map_struct[3].z = 0.5
    msg.c_struct.a = 1
    msg.c_struct.b = "b"
    msg.c_struct.inner.deep = True
    msg.c_struct.tags.extend([1, 2])
    table = "main.default.all_types"
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET,
                           TableProperties(table, mod.AllTypes.DESCRIPTOR)) as stream:
        stream.ingest_record_offset(msg)
    assert server.payloads(table)[-1] == msg.SerializeToString()
    row = server.rows(table, "c_int, c_string, c_req")[-1]
    assert row == (5, "s", 9)


def test_cli_default_message_name_and_readme_table(server, tmp_path):
    out = tmp_path / "aq.proto"
    r = run_tool(server, "main.default.air_quality", out)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == (
        'syntax = "proto2";\n\nmessage air_quality {\n'
        "  optional string device_name = 1;\n  optional int32 temp = 2;\n"
        "  optional int64 humidity = 3;\n}\n")


@pytest.mark.parametrize("table,word", [
    ("main.default.bad_decimal", "unsupported Delta type DECIMAL"),
    ("main.default.bad_nested_array", "cannot be expressed"),
    ("main.default.no_such_table", "HTTP 404"),
])
def test_cli_errors(server, tmp_path, table, word):
    out = tmp_path / "x.proto"
    r = run_tool(server, table, out)
    assert r.returncode == 1
    assert word in r.stderr
    assert not out.exists()


def test_cli_bad_credentials(server, tmp_path):
    r = run_tool(server, "main.default.air_quality", tmp_path / "x.proto", secret="nope")
    assert r.returncode == 1 and "HTTP 401" in r.stderr and "nope" not in r.stderr


def test_cli_bad_table_name(server, tmp_path):
    r = run_tool(server, "onlytwo.parts", tmp_path / "x.proto")
    assert r.returncode == 2 and "catalog.schema.table" in r.stderr
