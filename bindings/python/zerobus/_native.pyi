# The SWIG-generated extension (src/zerobus_native.i); see that file for the
# functions. Typed loosely: it is private to the binding.
from typing import Any

def __getattr__(name: str) -> Any: ...
