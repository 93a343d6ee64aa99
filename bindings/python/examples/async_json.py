"""asyncio JSON ingestion with an ack callback (the reference SDK's non-blocking example)."""
import asyncio
import logging

from zerobus.sdk.aio import ZerobusSdk
from zerobus.sdk.shared import AckCallback, RecordType, StreamConfigurationOptions, TableProperties

from _config import client_id, client_secret, server_endpoint, table_name, workspace_url

logging.basicConfig(level=logging.INFO)


async def main():
    class MyCallback(AckCallback):
        def __init__(self):
            self.count = 0

        def on_ack(self, offset: int):
            self.count += 1

    callback = MyCallback()
    options = StreamConfigurationOptions(
        record_type=RecordType.JSON,
        max_inflight_records=50000,
        ack_callback=callback
    )
    sdk = ZerobusSdk(server_endpoint, workspace_url)
    table_properties = TableProperties(table_name)
    stream = await sdk.create_stream(client_id, client_secret, table_properties, options)
    futures = []
    try:
        for i in range(1000):
            record_dict = {
                "device_name": f"sensor-{i % 10}",
                "temp": 20 + i % 15,
                "humidity": 50 + i % 40
            }
            future = await stream.ingest_record(record_dict)
            futures.append(future)
        await stream.flush()
        await asyncio.gather(*futures)
    finally:
        await stream.close()
    print(f"Acknowledged {callback.count} records")


asyncio.run(main())
