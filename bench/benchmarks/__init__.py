"""The pytest-benchmark suite (test_benchmarks.py) and its pytest plugin (plugin.py).

A package so that ``pytest --pyargs bench.benchmarks`` finds the suite from any folder,
and so that the plugin is importable for its ``pytest11`` entry point.
"""
