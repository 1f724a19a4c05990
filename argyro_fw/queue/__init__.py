"""Cluster side: argyro's FireWorks queue adapter (Jinja job scripts) and scheduler reconciliation."""
