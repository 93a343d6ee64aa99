"""Logs of the core, delivered to Python's ``logging`` under the logger "zerobus".

The core reads ZEROBUS_LOG (or RUST_LOG, the variable the reference SDK documents)
for its level. So that these lines are also *shown*, the same variables set the
level of the "zerobus" logger here, and add a stderr handler when the application
configured no logging at all.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional

logger = logging.getLogger("zerobus")

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# zerobus_log_level -> logging level
CORE_TO_PY = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: TRACE}
_NAMES = {"off": 0, "error": 1, "warn": 2, "warning": 2, "info": 3, "debug": 4, "trace": 5}
_CORE_NAMES = {0: "off", 1: "error", 2: "warn", 3: "info", 4: "debug", 5: "trace"}


def _parse_level(text: str) -> Optional[int]:
    """A core level (0..5) from "debug", "4", or RUST_LOG directives such as
    "info,zerobus_sdk=debug" (a directive for a target starting with "zerobus" wins
    over a bare level); None when nothing applies."""
    bare = None
    targeted = None
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if "=" in part:
            target, _, lvl = part.partition("=")
            if target.strip().startswith("zerobus"):
                targeted = _word_level(lvl.strip())
        else:
            bare = _word_level(part)
    return targeted if targeted is not None else bare


def _word_level(word: str) -> Optional[int]:
    if word in _NAMES:
        return _NAMES[word]
    if word.isdigit() and int(word) <= 5:
        return int(word)
    return None


def env_level() -> Optional[int]:
    """The core level from ZEROBUS_LOG, else RUST_LOG; None when neither applies."""
    for var in ("ZEROBUS_LOG", "RUST_LOG"):
        value = os.environ.get(var)
        if value:
            lvl = _parse_level(value)
            if lvl is not None:
                return lvl
    return None


def core_level_name() -> str:
    """The "log_level" option to give a new stream: the environment's level when
    set, else the level the "zerobus" logger lets through (so that
    logging.basicConfig(level=logging.DEBUG) also turns on the core's debug lines)."""
    lvl = env_level()
    if lvl is None:
        eff = logger.getEffectiveLevel()
        if eff <= TRACE:
            lvl = 5
        elif eff <= logging.DEBUG:
            lvl = 4
        elif eff <= logging.INFO:
            lvl = 3
        elif eff <= logging.WARNING:
            lvl = 2
        elif eff <= logging.ERROR:
            lvl = 1
        else:
            lvl = 0
    return _CORE_NAMES[lvl]


def emit(level: int, message: str) -> None:
    """One log line from the core (a LOG event)."""
    pylevel = CORE_TO_PY.get(level, logging.INFO)
    if logger.isEnabledFor(pylevel):
        logger.log(pylevel, "%s", message)


def configure_from_env() -> None:
    lvl = env_level()
    if lvl is None:
        return
    if lvl == 0:
        logger.setLevel(logging.CRITICAL + 1)
        return
    logger.setLevel(CORE_TO_PY[lvl])
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
