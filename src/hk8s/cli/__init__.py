"""The ``hk8s`` command line: parse, wire real providers, render. No logic lives here."""

from __future__ import annotations

from hk8s.cli._app import COMMANDS, build_app
from hk8s.cli._main import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PLAN_HAS_CHANGES,
    EXIT_USAGE,
    main,
    run,
)
from hk8s.cli._options import ConfigFile, Token
from hk8s.cli._output import Output, OutputMode

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PLAN_HAS_CHANGES",
    "EXIT_USAGE",
    "ConfigFile",
    "Output",
    "OutputMode",
    "Token",
    "build_app",
    "main",
    "run",
]
