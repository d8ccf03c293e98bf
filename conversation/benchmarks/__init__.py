"""Benchmarks and measurement: they drive the core and the stages and measure what comes out.

They import the core and the stages, never the application.
"""
