"""The real-server tier: rxllm against llama.cpp's ``llama-server`` and llama-cpp-python's server.

A package (``real``) so that its ``conftest`` and modules do not collide with the
suite's top-level ``conftest``. ``python -m real`` (what ``scripts/real-servers``
runs) builds and starts both servers by hand.
"""
