"""A small state shared by the cases."""

from attrs import frozen


@frozen
class Desk:
    count: int
    name: str = ""
