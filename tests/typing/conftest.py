"""The typing samples are checked by mypy (tests/test_typing.py), not imported."""

collect_ignore = ["typed_program.py"]
