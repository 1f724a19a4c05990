"""The engine registry: every engine the study config can name, behind one small interface per kind.

=============  =====================================  ==============================================
kind           interface                              engines (config name -> class or factory)
=============  =====================================  ==============================================
energy         ``EnergyEngine.firework(cfg, structure, label, kind, stage, parents)`` -> Firework
                                                      ``vasp`` (VASP through custodian),
                                                      ``chgnet`` (offline stand-in, argyro_fw.demo)
calculator     ``calculator(spec, device)`` -> ASE calculator (explorers and in-process labellers)
                                                      ``mace:PATH`` (a MACE model), ``chgnet``, ``toy``
MD             ``MDEngine.run_segment(seg_dir, protocol)``  ``mliap`` (LAMMPS ML-IAP, GPU),
                                                      ``external`` (LAMMPS fix external + MACE, CPU)
foundation     ``provider(workdir)`` -> (model path, replay path, Firework that makes them or None)
                                                      ``toy`` (a tiny MACE trained here, argyro_fw.demo)
=============  =====================================  ==============================================

Entries are import paths, loaded when first used: adding an engine is one new module and one line
here. The demo's stand-ins live in :mod:`argyro_fw.demo`; only this table names them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError

#: energy/labelling engines of the study (config ``engine``)
ENERGY: dict[str, str] = {
    "vasp": "argyro_fw.engines.vasp:VaspEngine",
    "chgnet": "argyro_fw.demo.chgnet:ChgnetEngine",
}
#: ASE calculators for exploration MD and in-process labels (config ``active_learning.explorer/labeller``);
#: ``mace`` takes the model path after a colon (``mace:/path/model``)
CALCULATORS: dict[str, str] = {
    "mace": "argyro_fw.mlip.calculators:mace_calculator",
    "chgnet": "argyro_fw.demo.chgnet:chgnet_calculator",
    "toy": "argyro_fw.demo.toy:toy_labeller",
}
#: MD engines (config ``mlmd.engine``)
MD: dict[str, str] = {
    "mliap": "argyro_fw.md.engines:MliapEngine",
    "external": "argyro_fw.md.engines:FixExternalEngine",
}
#: foundation-model providers for a config value that is not a path (``active_learning.foundation_model``)
FOUNDATION: dict[str, str] = {
    "toy": "argyro_fw.demo.tasks:toy_foundation",
}


def _load(table: dict[str, str], name: str, what: str) -> Any:
    if name not in table:
        raise ConfigError(f"{what} {name!r}: expected one of {', '.join(sorted(table))}")
    module, attr = table[name].split(":")
    return getattr(importlib.import_module(module), attr)


def energy_engine(name: str):
    """The energy engine ``name`` (an instance)."""
    return _load(ENERGY, name, "engine")()


def calculator(spec: str, device: str):
    """An ASE calculator from a spec: ``mace:PATH``, ``chgnet`` or ``toy``."""
    name, _, arg = spec.partition(":")
    factory = _load(CALCULATORS, name, "calculator")
    if name == "mace":
        if not arg:
            raise ConfigError(f"calculator {spec!r}: expected mace:<model path>")
        return factory(arg, device=device)
    return factory()


def md_engine(name: str, **kwargs):
    """The MD engine ``name`` configured with ``kwargs`` (model, mliap_model, lmp_binary, device)."""
    return _load(MD, name, "MD engine")(**kwargs)


def foundation_provider(name: str):
    """The provider of a non-path foundation model value, or None when ``name`` is a path."""
    return _load(FOUNDATION, name, "foundation model") if name in FOUNDATION else None
