"""infusion/services"""
