"""Exceptions of the binding, built from the core's errors.

Every error of libzerobus carries a status code, a message and a retryable flag.
The flag picks the class: ``ZerobusException`` when retrying (or recovering the
stream) may succeed, ``NonRetriableException`` when it cannot (bad credentials, a
missing table, an invalid record, a closed stream...).
"""
from __future__ import annotations

from typing import Optional

__all__ = ["ZerobusException", "NonRetriableException", "InvalidOptionError"]


class ZerobusException(Exception):
    """An error of the Zerobus SDK that may succeed when retried.

    Attributes (set when the error comes from the core, else defaults):
      message      the error message
      cause        the exception that caused it, or None
      code         the core's zerobus_status value (int), None for Python-side errors
      status_name  its name, e.g. "ZEROBUS_ERR_UNAVAILABLE"
      retryable    True for ZerobusException, False for NonRetriableException
      grpc_status  the gRPC status code behind the error, or -1
      http_status  the HTTP status of a failed token/Unity Catalog request, or -1
    """

    retryable: bool = True

    def __init__(self, message: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause
        self.code: Optional[int] = None
        self.status_name: Optional[str] = None
        self.grpc_status: int = -1
        self.http_status: int = -1

    def __str__(self) -> str:
        return self.message


class NonRetriableException(ZerobusException):
    """An error that retrying the same operation cannot fix."""

    retryable = False


class InvalidOptionError(NonRetriableException, ValueError):
    """An option name or value the core refused (also a ValueError)."""


_INVALID_OPTION_CODES = (8, 9)  # ZEROBUS_ERR_UNKNOWN_OPTION, ZEROBUS_ERR_INVALID_OPTION


def from_core(code: int, name: str, message: str, retryable: int, grpc_status: int,
              http_status: int) -> ZerobusException:
    """The factory the native module calls to build exceptions."""
    if code in _INVALID_OPTION_CODES:
        cls: type = InvalidOptionError
    elif retryable:
        cls = ZerobusException
    else:
        cls = NonRetriableException
    exc = cls(message or name)
    exc.code = code
    exc.status_name = name
    exc.grpc_status = grpc_status
    exc.http_status = http_status
    return exc
