"""infusion/demo"""
