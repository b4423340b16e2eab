"""infusion/exports"""
