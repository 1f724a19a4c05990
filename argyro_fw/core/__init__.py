"""Shared foundations with no science and no orchestration: chemistry constants and serialisation.

Nothing here imports FireWorks or pymongo; every other part of argyro may import from here.
"""
