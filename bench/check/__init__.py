"""``backprop-bench check``: is one kernel right, and if not, which array is wrong and what the mistake looks like.

:mod:`bench.check.steps` runs the comparisons with the reference, :mod:`bench.check.diagnose`
names the mistake a wrong array fits, :mod:`bench.check.speed` has the harness time and
verify one MNIST epoch. The command line is :mod:`bench.cli.check`.
"""
