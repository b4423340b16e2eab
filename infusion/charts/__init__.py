"""infusion/charts"""
