"""Benchmarks: restkit side by side with bare WSGI, Bottle, Falcon and Flask.

``python -m benchmarks.inprocess`` calls each framework's WSGI callable
directly; ``python -m benchmarks.server`` loads real servers over loopback.
See ``benchmarks/README.md``.
"""
