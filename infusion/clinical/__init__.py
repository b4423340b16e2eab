"""infusion/clinical"""
