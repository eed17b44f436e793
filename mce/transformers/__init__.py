"""Reference semantics: small, direct, obviously-correct monads and transformers.

They are slow on purpose; they define what the fast interpreter must do.
Monads are instance objects (dictionary-passing style) with `pure`, `bind`,
`map`, `ap`, and `lift` for the transformers. Both orders of state and
failure are expressible:

* `StateT(EitherT(ASYNC))` - mce's stack: a failure loses the failed
  attempt's state, so `catch` resumes from the state where it was entered.
* `EitherT(StateT(ASYNC))` - the state is threaded under the error, so
  changes made before a failure survive it.

>>> S1 = StateT(EitherT(IDENTITY))
>>> attempt = S1.bind(S1.put("changed"), lambda _: S1.throw("e"))
>>> run_state(S1.catch(attempt, lambda e: S1.get()), "start")
Id(value=Right(value=('start', 'start')))
>>> S2 = EitherT(StateT(IDENTITY))
>>> attempt = S2.bind(S2.put("changed"), lambda _: S2.throw("e"))
>>> run_state(S2.catch(attempt, lambda e: S2.get()), "start")
Id(value=(Right(value='changed'), 'changed'))
"""

from mce.transformers.async_ import ASYNC as ASYNC
from mce.transformers.async_ import Async as Async
from mce.transformers.async_ import Thunk as Thunk
from mce.transformers.async_ import run_async as run_async
from mce.transformers.denote import STACK as STACK
from mce.transformers.denote import denote as denote
from mce.transformers.denote import run_denotation as run_denotation
from mce.transformers.either import EitherT as EitherT
from mce.transformers.either import Left as Left
from mce.transformers.either import Right as Right
from mce.transformers.either import run_either as run_either
from mce.transformers.identity import IDENTITY as IDENTITY
from mce.transformers.identity import Id as Id
from mce.transformers.identity import Identity as Identity
from mce.transformers.identity import run_identity as run_identity
from mce.transformers.monad import Monad as Monad
from mce.transformers.reader import ReaderFn as ReaderFn
from mce.transformers.reader import ReaderT as ReaderT
from mce.transformers.reader import run_reader as run_reader
from mce.transformers.state import StateFn as StateFn
from mce.transformers.state import StateT as StateT
from mce.transformers.state import eval_state as eval_state
from mce.transformers.state import exec_state as exec_state
from mce.transformers.state import run_state as run_state
from mce.transformers.writer import WriterT as WriterT
from mce.transformers.writer import run_writer as run_writer

__all__ = [
    "ASYNC",
    "IDENTITY",
    "STACK",
    "Async",
    "EitherT",
    "Id",
    "Identity",
    "Left",
    "Monad",
    "ReaderFn",
    "ReaderT",
    "Right",
    "StateFn",
    "StateT",
    "Thunk",
    "WriterT",
    "denote",
    "eval_state",
    "exec_state",
    "run_async",
    "run_denotation",
    "run_either",
    "run_identity",
    "run_reader",
    "run_state",
    "run_writer",
]
