"""JSON schemas from type hints, and validation of JSON values against them, on pydantic.

`Schema(T)` builds pydantic's validator and serializer for a type once, and
then describes (`json_schema`, `strict_json_schema`), checks and builds
(`validate`, `validate_json`) and writes back (`dump`) values of that type.
`FunctionSchema(fn)` does the same for a function's parameters: one JSON
object, with descriptions from `Annotated[..., Field(description=...)]` and
from the docstring's `Args:` section, and the defaults. A `SchemaError`
lists *every* bad field, each with its path (`items[2].name`).

Types understood: everything pydantic understands (`BaseModel`s,
dataclasses, `TypedDict`s, `Enum`s, `Literal`, `datetime`/`date`/`UUID`,
`set`, `tuple`, unions, `Annotated[..., Field(...)]`, ...) and attrs classes.

>>> from attrs import frozen
>>> @frozen
... class Query:
...     text: str
...     limit: int = 5
>>> schema_of(Query)["required"]
['text']
>>> convert({"text": "mce"}, Query)
Query(text='mce', limit=5)
>>> convert({"text": 3, "limit": "many"}, Query)
Traceback (most recent call last):
...
mce.schema.SchemaError: 2 invalid fields: text: expected a string, got 3; limit: expected an integer, got 'many'
"""

from mce.schema._errors import FieldError as FieldError
from mce.schema._errors import SchemaError as SchemaError
from mce.schema._function_schema import FunctionSchema as FunctionSchema
from mce.schema._function_schema import Parameter as Parameter
from mce.schema._function_schema import parse_docstring as parse_docstring
from mce.schema._to_json import to_json as to_json
from mce.schema._type_schema import Schema as Schema
from mce.schema._type_schema import convert as convert
from mce.schema._type_schema import response_format as response_format
from mce.schema._type_schema import schema_of as schema_of

__all__ = [
    "FieldError",
    "FunctionSchema",
    "Parameter",
    "Schema",
    "SchemaError",
    "convert",
    "parse_docstring",
    "response_format",
    "schema_of",
    "to_json",
]
