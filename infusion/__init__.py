"""Chairside domain: validation, the session state machine, schedules, NEWS2,
alert rules and the service functions every page and test writes through.

No Streamlit import is allowed anywhere in this package.
"""
