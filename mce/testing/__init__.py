"""Testing support: a loopback OpenAI-compatible server (`mce.testing.openai_server`).

The pytest plugin (`mce.pytest_plugin`) is loaded by pytest automatically.
"""

__all__: list[str] = []
