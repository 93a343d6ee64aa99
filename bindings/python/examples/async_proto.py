"""asyncio protobuf ingestion, batches and fire-and-forget."""
import asyncio
import logging

from zerobus.sdk.aio import ZerobusSdk
from zerobus.sdk.shared import TableProperties

import record_pb2
from _config import client_id, client_secret, server_endpoint, table_name, workspace_url

logging.basicConfig(level=logging.INFO)


async def main():
    sdk = ZerobusSdk(server_endpoint, workspace_url)
    table_properties = TableProperties(table_name, record_pb2.AirQuality.DESCRIPTOR)
    stream = await sdk.create_stream(client_id, client_secret, table_properties)
    try:
        batch = [record_pb2.AirQuality(device_name=f"sensor-{i}", temp=i, humidity=i)
                 for i in range(50)]
        await stream.ingest_records_offset(batch)
        for record in batch:
            stream.ingest_record_nowait(record.SerializeToString())
        await stream.flush()
    finally:
        await stream.close()
    print("Successfully ingested 100 records!")


asyncio.run(main())
