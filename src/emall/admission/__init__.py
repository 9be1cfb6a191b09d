"""Supplier admission (入驻), bans (禁入) and the one question: may S sell to region R today?"""
