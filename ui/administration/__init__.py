"""The parts of the Administration page: clinic settings, users, chairs and patients, the therapy catalog.

`pages/administration.py` lays them out in tabs that keep their place; every save goes through `ui.forms`.
"""
