"""The results store's collections: name, upsert key, required fields (one home for each; :mod:`argyro_fw.store`
re-exports them, :mod:`argyro_fw.store.offline` uses them on a compute node with no route to the database)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schema:
    """A collection's name, upsert key, required fields and indexes."""
    name: str
    key: tuple[str, ...]
    required: tuple[str, ...]
    unique: bool = True


STUDIES = Schema("studies", ("name",), ("name", "updated_at"))
STRUCTURES = Schema("structures", ("key",), ("key", "study", "kind", "structure", "formula", "n_atoms", "metadata",
                                               "created_at"))
CALCULATIONS = Schema("calculations", ("engine", "label", "directory", "input_checksum"),
                      ("engine", "label", "kind", "final_energy_eV", "n_atoms", "formula", "ionic_steps",
                       "final_structure", "metadata", "completed_at", "argyro_version"))
LABELS = Schema("labels", ("hash",), ("hash", "energy", "forces", "stress", "labeller", "n_atoms", "created_at"))
SURFACE_ENERGIES = Schema("surface_energies", ("study", "key"), ("study", "key", "rank", "gamma_surf_eV_nm2",
                                                                  "energy_eV", "created_at"))
INTERFACES = Schema("interfaces", ("study", "key"), ("study", "key"))
AL_ITERATIONS = Schema("al_iterations", ("al_name", "iteration"), ("al_name", "iteration", "dataset_size", "models",
                                                                     "uncertainty_eV_A", "convergence"))
ANALYSES = Schema("analyses", ("h5_path",), ("h5_path", "trajectory", "interface", "temperature_K", "results",
                                             "argyro_version", "created_at"))
DIFFUSION = Schema("diffusion", ("study", "temperature_K"), ("study", "temperature_K", "D_cm2_s", "sigma_S_cm", "h5"))

SCHEMAS: dict[str, Schema] = {s.name: s for s in (STUDIES, STRUCTURES, CALCULATIONS, LABELS, SURFACE_ENERGIES,
                                                    INTERFACES, AL_ITERATIONS, ANALYSES, DIFFUSION)}
#: the collections that hold one study's records (field ``study``)
PER_STUDY = (STRUCTURES.name, SURFACE_ENERGIES.name, INTERFACES.name, DIFFUSION.name)
