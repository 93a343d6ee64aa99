"""Failure handling: unacknowledged records of a failed stream retried on a new one."""
import logging

from zerobus import NonRetriableException
from zerobus.sdk.sync import ZerobusSdk
from zerobus.sdk.shared import RecordType, StreamConfigurationOptions, TableProperties

from _config import client_id, client_secret, server_endpoint, table_name, workspace_url

logging.basicConfig(level=logging.INFO)

sdk = ZerobusSdk(server_endpoint, workspace_url)
table_properties = TableProperties(table_name)
options = StreamConfigurationOptions(record_type=RecordType.JSON)
stream = sdk.create_stream(client_id, client_secret, table_properties, options)
unacked_records = []
try:
    for i in range(100):
        stream.ingest_record_offset({"device_name": f"sensor-{i}", "temp": i, "humidity": i})
    stream.flush()
except NonRetriableException as e:
    print(f"Stream failed: {e}")
    unacked_records = stream.get_unacked_records()
finally:
    try:
        stream.close()
    except NonRetriableException:
        pass

if unacked_records:
    new_stream = sdk.create_stream(client_id, client_secret, table_properties, options)
    for record_bytes in unacked_records:
        new_stream.ingest_record_offset(record_bytes)
    new_stream.flush()
    new_stream.close()
print(f"Retried {len(unacked_records)} records")
