"""Satchel's benchmark suite (issue 8): `make bench` or `python -m tests.bench`. Not part of `make test`."""
