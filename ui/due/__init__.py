"""The parts of the Due page: the due and too-early lists, the booking forms, the protocol intervals.

`pages/due.py` lays them out; each part takes the page's `Due` context.
"""
