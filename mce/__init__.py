"""mce: typed, lawful, concurrent and replayable LLM agent workflows.

A workflow is a value of type `Step[S, E, A]` - a `StateT S (EitherT E Async)`
program - built from the constructors below and run by `run`/`run_sync`.

>>> from mce import par, pure, run_sync
>>> run_sync(par(pure(1), pure(2)), None)
Ok(value=(1, 2), state=None)
"""

from typing import TYPE_CHECKING, Any

from mce._runtime.writer import JournalWriteError as JournalWriteError
from mce.budget import Budget as Budget
from mce.budget import BudgetExceeded as BudgetExceeded
from mce.budget import within_budget as within_budget
from mce.do import do as do
from mce.effects import EffectError as EffectError
from mce.effects import EffectFailed as EffectFailed
from mce.effects import Handler as Handler
from mce.effects import MissingHandler as MissingHandler
from mce.effects import Secret as Secret
from mce.effects import UnusedHandler as UnusedHandler
from mce.effects import effect as effect
from mce.effects import now as now
from mce.effects import random as random
from mce.effects import sleep as sleep
from mce.effects import uuid as uuid
from mce.errors import Failures as Failures
from mce.errors import StepTimeout as StepTimeout
from mce.events import TraceEvent as TraceEvent
from mce.interpret import Mode as Mode
from mce.interpret import run as run
from mce.interpret import run_sync as run_sync
from mce.journal import FileJournal as FileJournal
from mce.journal import Journal as Journal
from mce.journal import JournalCorrupt as JournalCorrupt
from mce.journal import JournalInUse as JournalInUse
from mce.journal import JournalWarning as JournalWarning
from mce.journal import ReplayDivergence as ReplayDivergence
from mce.merge import StateConflict as StateConflict
from mce.outcome import Err as Err
from mce.outcome import Ok as Ok
from mce.outcome import Outcome as Outcome
from mce.outcome import RunReport as RunReport
from mce.outcome import Waiting as Waiting
from mce.questions import AnswerInvalid as AnswerInvalid
from mce.questions import Question as Question
from mce.questions import ask as ask
from mce.retry import RetryPolicy as RetryPolicy
from mce.step import Step as Step
from mce.step import collect as collect
from mce.step import defer as defer
from mce.step import fail as fail
from mce.step import gather as gather
from mce.step import get as get
from mce.step import gets as gets
from mce.step import lift as lift
from mce.step import modify as modify
from mce.step import par as par
from mce.step import pure as pure
from mce.step import put as put
from mce.step import share as share
from mce.step import traverse as traverse

if TYPE_CHECKING:
    from mce.tools import Tool as Tool
    from mce.tools import ToolError as ToolError
    from mce.tools import tool as tool


__all__ = [
    "AnswerInvalid",
    "Budget",
    "BudgetExceeded",
    "EffectError",
    "EffectFailed",
    "Err",
    "Failures",
    "FileJournal",
    "Handler",
    "Journal",
    "JournalCorrupt",
    "JournalInUse",
    "JournalWarning",
    "JournalWriteError",
    "MissingHandler",
    "Mode",
    "UnusedHandler",
    "Ok",
    "Outcome",
    "Question",
    "ReplayDivergence",
    "RetryPolicy",
    "RunReport",
    "Secret",
    "StateConflict",
    "Step",
    "StepTimeout",
    "Tool",
    "ToolError",
    "TraceEvent",
    "Waiting",
    "ask",
    "collect",
    "defer",
    "do",
    "effect",
    "fail",
    "gather",
    "get",
    "gets",
    "lift",
    "modify",
    "now",
    "par",
    "pure",
    "put",
    "random",
    "run",
    "run_sync",
    "share",
    "sleep",
    "tool",
    "traverse",
    "uuid",
    "within_budget",
]

# `mce.tools` is loaded when one of its names is first used, so `import mce`
# stays fast (its schemas, on pydantic, are built when a tool is first used).
_FROM_TOOLS = ("Tool", "ToolError", "tool")


def _installed_version() -> str:
    """The installed mce version (`mce.__version__`; `mce --version` prints it)."""
    # Read on first use: importlib.metadata and the lookup cost ~30 ms, a third of `import mce`.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mce")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name in _FROM_TOOLS:
        import mce.tools

        value = globals()[name] = getattr(mce.tools, name)
        return value
    if name == "__version__":
        found = globals()[name] = _installed_version()
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_TOOLS})
