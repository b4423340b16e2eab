"""Chairside's benchmark suite (issue 14, network scale): `python -m benchmarks --help`.

Every figure is timed after a warm-up, interleaved round by round with its floor
(the cheapest way to get the same numbers), and reported as one table of medians
with min–max, the ratio to the floor and whether the issue's target is met.
See benchmarks/README.md for what each row means and the latest results.
"""
