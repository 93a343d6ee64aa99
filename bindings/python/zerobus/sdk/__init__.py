"""The Zerobus SDK: zerobus.sdk.sync (blocking) and zerobus.sdk.aio (asyncio)."""
