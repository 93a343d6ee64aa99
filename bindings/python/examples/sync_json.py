"""Sync JSON ingestion (the reference SDK's quick start)."""
import json
import logging

from zerobus.sdk.sync import ZerobusSdk
from zerobus.sdk.shared import RecordType, StreamConfigurationOptions, TableProperties

from _config import client_id, client_secret, server_endpoint, table_name, workspace_url

logging.basicConfig(level=logging.INFO,
                    format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")

sdk = ZerobusSdk(server_endpoint, workspace_url)
table_properties = TableProperties(table_name)
options = StreamConfigurationOptions(record_type=RecordType.JSON)
stream = sdk.create_stream(client_id, client_secret, table_properties, options)
try:
    for i in range(100):
        record_dict = {
            "device_name": f"sensor-{i % 10}",
            "temp": 20 + (i % 15),
            "humidity": 50 + (i % 40)
        }
        if i % 2 == 0:
            ack = stream.ingest_record(record_dict)            # SDK serializes
        else:
            ack = stream.ingest_record(json.dumps(record_dict))  # pre-serialized
        ack.wait_for_ack()
    print("Successfully ingested 100 records!")
finally:
    stream.close()
