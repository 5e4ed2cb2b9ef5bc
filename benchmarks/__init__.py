"""``make bench``: how many requests, how much time, CPU and memory a reconcile takes at scale.

See :mod:`benchmarks.bench` for what is measured and how to read the output.
"""
