"""The parts of the Chairside page: the list, the vitals form, each step, the record.

`pages/chairside.py` lays them out; each part takes the page's `Chairside` context.
"""
