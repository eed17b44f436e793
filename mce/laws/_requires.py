"""Fail early, saying what to install, when hypothesis (the `laws` extra) is missing."""

try:
    import hypothesis
except ImportError as missing:
    raise ImportError(
        'mce.laws needs hypothesis, which is not installed: pip install "mce[laws]"',
        name="hypothesis",
    ) from missing

__all__ = ["hypothesis"]
