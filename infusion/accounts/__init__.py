"""infusion/accounts"""
