"""MLIP stage (METHOD.md section 5): MACE training commands, datasets, committee tools."""
