"""Durability: atomic writes, hashing, crash points, the journal, sessions, and the mirror.

Nothing here knows about meetings or rollouts: it keeps bytes safe and says what it holds.
"""
