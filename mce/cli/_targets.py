"""Loading what a command names: the workflow MODULE:ATTR with its handlers, and `--state`."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from mce.cli._errors import UsageError
from mce.step import Step


def _import_failed(module: str, exc: BaseException) -> UsageError:
    """A clear message for a target that does not import: what went wrong, and where."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename or module}"
        return UsageError(
            f"{where} has a syntax error at line {exc.lineno}: {exc.msg}"
            + (f"\n    {exc.text.strip()}" if exc.text else "")
        )
    frames = traceback.extract_tb(exc.__traceback__)
    # the target's own top-level line that raised: the outermost frame past
    # this module and the import machinery
    user = [f for f in frames if "importlib" not in f.filename and f.filename != __file__]
    where = f" (at {user[0].filename}, line {user[0].lineno})" if user else ""
    return UsageError(f"importing {module} raised {type(exc).__name__}: {exc}{where}")


def _import(module: str) -> Any:
    try:
        return _import_unchecked(module)
    except UsageError:
        raise
    except Exception as exc:
        # Importing a target runs its top-level code; any failure there is bad
        # input to the command (exit 2), not a crash of the command itself.
        raise _import_failed(module, exc) from None


def _import_unchecked(module: str) -> Any:
    if module.endswith(".py") or os.sep in module or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise UsageError(f"no such file: {module}")
        spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot load {module} as a module")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[spec.name]
            raise
        return loaded
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(module)
    except ImportError as exc:  # a parent package that is not there
        raise UsageError(f"cannot import module {module!r}: {exc}") from None
    if found is None:
        raise UsageError(f"cannot import module {module!r}: no module named {module!r}")
    return importlib.import_module(module)


def load_target(target: str) -> tuple[Step[Any, Any, Any], dict[str, Any]]:
    """The workflow named by MODULE:ATTR, and the module's handlers.

    >>> step, handlers = load_target("mce.demo:workflow")
    >>> type(step).__name__ != "", isinstance(handlers, dict)
    (True, True)
    """
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected MODULE:ATTR (like flows.agent:workflow), got {target!r}")
    module = _import(module_name)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(value, Step) and callable(value):
        try:
            value = value()
        except TypeError as exc:
            raise UsageError(
                f"{target} must be a Step or a function with no required arguments: {exc}"
            ) from None
    if not isinstance(value, Step):
        raise UsageError(f"{target} is a {type(value).__name__}, not a Step")
    handlers = getattr(module, "mce_handlers", {})
    if callable(handlers):
        handlers = handlers()
    if not isinstance(handlers, dict):
        raise UsageError(f"{module_name}.mce_handlers must be a dict of handlers")
    return value, handlers


def _state(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--state is not valid JSON: {exc}") from None
