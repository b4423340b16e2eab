"""infusion/reads"""
