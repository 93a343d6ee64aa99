"""The descriptor sent at creation: the named message, self-contained."""
from google.protobuf import descriptor_pb2

from conftest import CLIENT_ID, CLIENT_SECRET, compile_proto_file
from zerobus import _core
from zerobus.sdk.shared import TableProperties

COMMON = '''
syntax = "proto2";
package shop.common;
message Money {
  optional string currency = 1;
  optional int64 cents = 2;
}
enum Color { RED = 0; GREEN = 1; }
'''

ORDERS = '''
syntax = "proto2";
package shop.orders;
import "common.proto";
import "google/protobuf/timestamp.proto";
message First { optional int32 unused = 1; }
message Line {
  optional string sku = 1;
  optional shop.common.Money price = 2;
}
message Order {
  message Note { optional string text = 1; }
  enum Status { NEW = 0; PAID = 1; }
  optional string id = 1;
  repeated Line lines = 2;
  optional shop.common.Money total = 3;
  optional Note note = 4;
  optional Status status = 5;
  optional shop.common.Color color = 6;
  map<string, Line> by_sku = 7;
  optional google.protobuf.Timestamp at = 8;
}
'''


def build(tmp_path):
    (tmp_path / "common.proto").write_text(COMMON)
    (tmp_path / "orders.proto").write_text(ORDERS)
    compile_proto_file(str(tmp_path / "common.proto"), str(tmp_path))
    return compile_proto_file(str(tmp_path / "orders.proto"), str(tmp_path))


def all_type_names(msg, prefix=""):
    full = prefix + msg.name
    names = {full}
    refs = set()
    for f in msg.field:
        if f.type_name:
            refs.add(f.type_name)
    for n in msg.nested_type:
        sub_names, sub_refs = all_type_names(n, full + ".")
        names |= sub_names
        refs |= sub_refs
    for e in msg.enum_type:
        names.add(full + "." + e.name)
    return names, refs


def test_named_message_is_self_contained(tmp_path):
    orders_pb2 = build(tmp_path)
    raw = _core.descriptor_bytes(orders_pb2.Order.DESCRIPTOR)
    dp = descriptor_pb2.DescriptorProto.FromString(raw)
    assert dp.name == "Order"  # the message named, not the file's first one
    names, refs = all_type_names(dp)
    # every referenced type resolves inside the descriptor
    assert {r.lstrip(".") for r in refs} <= names, (refs, names)
    nested = {n.name for n in dp.nested_type}
    assert {"Note", "BySkuEntry"} <= nested
    assert "shop_orders_Line" in nested and "shop_common_Money" in nested
    assert "google_protobuf_Timestamp" in nested
    assert "shop_common_Color" in {e.name for e in dp.enum_type}
    fields = {f.name: f.type_name for f in dp.field}
    assert fields["lines"] == ".Order.shop_orders_Line"
    assert fields["total"] == ".Order.shop_common_Money"
    assert fields["note"] == ".Order.Note"
    assert fields["status"] == ".Order.Status"
    # a type used twice is copied once
    assert sum(1 for n in dp.nested_type if n.name == "shop_common_Money") == 1


def test_nested_proto_ingest_and_decode(server, sdk, table, tmp_path):
    orders_pb2 = build(tmp_path)
    order = orders_pb2.Order(id="o1", status=orders_pb2.Order.PAID)
    line = order.lines.add(sku="a")
    line.price.currency = "EUR"
    line.price.cents = 250
    order.total.cents = 250
    order.note.text = "fragile"
    order.by_sku["a"].sku = "a"
    order.at.seconds = 5
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET,
                           TableProperties(table, orders_pb2.Order.DESCRIPTOR)) as stream:
        assert stream.ingest_record_offset(order) == 0
    assert server.payloads(table) == [order.SerializeToString()]
    assert server.rows(table, "id")[0] == "o1"


def test_descriptor_proto_and_bytes_are_accepted(tmp_path):
    orders_pb2 = build(tmp_path)
    raw = _core.descriptor_bytes(orders_pb2.Order.DESCRIPTOR)
    dp = descriptor_pb2.DescriptorProto.FromString(raw)
    assert TableProperties("a.b.c", dp).descriptor_proto == raw
    assert TableProperties("a.b.c", raw).descriptor_proto == raw
    import pytest

    with pytest.raises(TypeError):
        TableProperties("a.b.c", orders_pb2.Order())  # a message, not its descriptor
