"""Sync protobuf ingestion. Compile record.proto first:
    python -m grpc_tools.protoc --python_out=. --proto_path=. record.proto"""
import logging

from zerobus.sdk.sync import ZerobusSdk
from zerobus.sdk.shared import TableProperties

import record_pb2
from _config import client_id, client_secret, server_endpoint, table_name, workspace_url

logging.basicConfig(level=logging.INFO)

sdk = ZerobusSdk(server_endpoint, workspace_url)
table_properties = TableProperties(table_name, record_pb2.AirQuality.DESCRIPTOR)
stream = sdk.create_stream(client_id, client_secret, table_properties)
try:
    for i in range(100):
        record = record_pb2.AirQuality(
            device_name=f"sensor-{i % 10}",
            temp=20 + (i % 15),
            humidity=50 + (i % 40)
        )
        offset = stream.ingest_record_offset(record)
    stream.wait_for_offset(offset)
    print("Successfully ingested 100 records!")
finally:
    stream.close()
