"""libzerobus for Python: ingest records into Databricks Delta tables over Zerobus.

The API matches the reference Zerobus Python SDK: ``zerobus.sdk.sync`` and
``zerobus.sdk.aio`` provide ZerobusSdk; ``zerobus.sdk.shared`` the options and
callback types. The work is done by the C library libzerobus (bundled).
"""
from ._errors import InvalidOptionError, NonRetriableException, ZerobusException
from . import _core

__all__ = ["ZerobusException", "NonRetriableException", "InvalidOptionError", "__version__",
           "core_version"]

__version__ = "0.1.0"


def core_version() -> str:
    """Version of the loaded libzerobus."""
    return _core._native.zerobus_version()
