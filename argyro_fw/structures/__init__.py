"""Structures stage (METHOD.md sections 1-3, 6): bulk Li6PS5Cl, decomposition phases, symmetric
surface terminations, Li | argyrodite interfaces, charge balancing and the energy equations.
Pure functions on pymatgen objects; no database."""
