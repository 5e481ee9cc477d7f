"""The compiled part of the package; everything else about it is in pyproject.toml.

protocol/_sigfast.c reads the signature of a signed request (goal 5 of issue 8). It is optional: without a C
compiler the install goes on, and the node reads every request with the Python code, which decides the same.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("protocol._sigfast", ["protocol/_sigfast.c"], optional=True)])
