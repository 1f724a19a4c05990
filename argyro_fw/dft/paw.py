"""POTCAR assembly from a user-configured PAW directory. POTCARs are licensed: never shipped.

The directory is ``$ARGYRO_POTCAR_DIR`` (:data:`POTCAR_ENV`, the one name everywhere; a site profile's
``potcar_dir`` becomes it in VASP jobs) or passed explicitly, with the standard VASP layout
``<dir>/<symbol>/POTCAR`` (e.g. ``potpaw_PBE/Li/POTCAR``). METHOD.md: standard Li (s1), P (s2p3),
S (s2p4), Cl (s2p5) potentials. :func:`check_potcars` is what ``argyro study --add`` runs before
any VASP firework exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

#: the environment variable that names the PAW folder (jobs, `argyro render vasp`, `argyro study --add`)
POTCAR_ENV = "ARGYRO_POTCAR_DIR"

#: element -> PAW symbol (METHOD.md section 4: the standard potentials)
DEFAULT_SYMBOLS = {"Li": "Li", "P": "P", "S": "S", "Cl": "Cl"}


def potcar_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The configured PAW directory, or None when none is configured."""
    d = explicit or os.environ.get(POTCAR_ENV)
    return Path(d).expanduser() if d else None


def assemble_potcar(elements: list[str], directory: str | os.PathLike | None = None,
                    symbols: dict[str, str] | None = None) -> str:
    """The POTCAR text for ``elements`` (POSCAR species order).

    Raises ConfigError when no PAW directory is configured, a file is missing, or a file's TITEL
    does not name the expected element.
    """
    d = potcar_dir(directory)
    if d is None:
        raise ConfigError(
            f"no POTCAR directory configured: set ${POTCAR_ENV} (or potcar_dir in the site profile) to your "
            "VASP PAW_PBE folder (it must hold <symbol>/POTCAR, e.g. Li/POTCAR)"
        )
    if not d.is_dir():
        raise ConfigError(f"POTCAR directory {d}: does not exist")
    symbols = {**DEFAULT_SYMBOLS, **(symbols or {})}
    parts = []
    for el in elements:
        sym = symbols.get(el, el)
        f = d / sym / "POTCAR"
        if not f.is_file():
            raise ConfigError(f"POTCAR for {el}: {f} does not exist")
        text = f.read_text()
        titel = next((ln for ln in text.splitlines() if "TITEL" in ln), "")
        if sym not in titel.split():
            raise ConfigError(f"POTCAR {f}: TITEL line {titel.strip()!r} does not name {sym}")
        parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


def check_potcars(elements, directory: str | os.PathLike | None = None, symbols: dict[str, str] | None = None) -> Path:
    """Check that the PAW folder holds a POTCAR for every element (file present, TITEL naming it).

    Returns the folder; raises a one-line ConfigError naming the first element whose POTCAR is missing
    or wrong, or saying that no folder is configured.
    """
    assemble_potcar(list(elements), directory, symbols)
    return potcar_dir(directory)
