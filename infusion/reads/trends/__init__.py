"""infusion/reads/trends"""
