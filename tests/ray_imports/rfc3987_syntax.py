"""Left out of the Ray processes the tests start (``local_ray`` in tests/conftest.py).

Ray's raylet gives its dashboard agent a fixed 15 s to start. The agent imports jsonschema,
which imports this optional package when it is installed (the notebooks extra brings it), and
it builds an Earley parser at import: 13 s on a busy 2-core box, and the raylet gave up. Without
it jsonschema only skips checking the "iri" formats, which Ray does not use.
"""

raise ImportError("rfc3987_syntax is left out of the tests' Ray processes (its import is slow)")
