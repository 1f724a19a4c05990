"""The study's published values (METHOD.md, values marked *ref* and the tables of section 8), in one place.

Every value carries the METHOD.md section it comes from (``section``). The report
(:mod:`argyro_fw.report`) and ``argyro results`` put them beside ours; nothing here is used as an input
of a calculation. Units are in the names (eV/nm², meV/atom, meV/Å, cm²/s, S/cm, ns, atoms/nm²/ns).

Interfaces are named as METHOD.md 3 names them: "(Li plane)/(argyrodite plane)", e.g. "(100)/(010)".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ref:
    """One published value: ``value`` (a number, or a (low, high) range), its unit, METHOD.md section, note."""
    value: float | tuple[float, float]
    unit: str
    section: str
    note: str = ""

    def text(self, spec: str = "g") -> str:
        if isinstance(self.value, tuple):
            return f"{format(self.value[0], spec)}-{format(self.value[1], spec)}"
        return format(self.value, spec)


# --- METHOD.md 1: bulk --------------------------------------------------------------------------------------
BULK = {
    "D_300K_cm2_s": Ref(5.79e-7, "cm2/s", "1", "Arrhenius extrapolation of D to 300 K"),
    "Ea_D_eV": Ref(0.18, "eV", "1", "Arrhenius fit of D"),
    "sigma_300K_S_cm": Ref(0.139, "S/cm", "1", "Arrhenius extrapolation of sigma to 300 K"),
    "Ea_sigma_eV": Ref(0.12, "eV", "1", "slope of ln(sigma) against 1/T (METHOD.md 9)"),
}
#: lattice of the relaxed disordered cell (METHOD.md 1): a, b, c (Å), alpha, beta, gamma (deg)
RELAXED_ABC_A = (9.96, 9.94, 10.03)
RELAXED_ANGLES_DEG = (88.8, 90.2, 91.0)

# --- METHOD.md 2 and 8 (Table 2): terminations ----------------------------------------------------------------
#: symmetric terminations per plane (METHOD.md 2; 28 in all)
TERMINATION_COUNTS = {"100": 6, "010": 8, "001": 4, "110": 2, "101": 4, "011": 4}
TERMINATION_COUNTS_SECTION = "2"
#: the three lowest gamma_surf (eV/nm2) (METHOD.md 2)
LOWEST_GAMMA_SURF = (("100", "Li-P-S-Cl", 1.006), ("011", "Li-P-S-Cl", 1.168), ("010", "Li-P-Cl", 1.225))
#: Table 2 divides the slab formula by this number (METHOD.md 8)
TABLE2_COMPOSITION_DIVISOR = 4
TABLE2_SECTION = "8"
#: Table 2 (METHOD.md 8): plane, termination, gamma_surf (eV/nm2), composition (slab formula / 4), charge (e)
TABLE2: tuple[tuple[str, str, float, str, int], ...] = (
    ("100", "S(Li-Cl)", 5.011, "Li8 P S7 Cl1.5", -10),
    ("100", "Li-Cl", 2.203, "Li8 P S5 Cl1.5", 6),
    ("100", "Li-P-S-Cl", 1.006, "Li10 P2 S8 Cl1.5", 10),
    ("100", "S(Li-S)", 5.691, "Li8 P S7.5 Cl", -12),
    ("100", "Li-S", 3.033, "Li8 P S5.5 Cl", 4),
    ("100", "Li-P-S-Cl", 1.576, "Li10 P2 S7.5 Cl2", 12),
    ("010", "S(Li-S/Cl)", 5.196, "Li11 P1.5 S9.5 Cl2", -10),
    ("010", "Li-S/Cl", 2.808, "Li11 P1.5 S7.5 Cl2", 6),
    ("010", "S(Li-P-Cl)", 2.413, "Li7 P1.5 S7 Cl1.5", 4),
    ("010", "Li-P-Cl", 1.225, "Li7 P1.5 S5 Cl1.5", 12),
    ("010", "S(Li-S/Cl)", 5.632, "Li11 P1.5 S10 Cl1.5", -12),
    ("010", "Li-S/Cl", 2.795, "Li11 P1.5 S8 Cl1.5", 4),
    ("010", "S(Li-P-S)", 3.208, "Li7 P1.5 S7.5 Cl", -6),
    ("010", "Li-P-S", 2.057, "Li7 P1.5 S5.5 Cl", 10),
    ("001", "S(Li-S/Cl)", 5.448, "Li8 P S7.25 Cl1.25", -11),
    ("001", "Li-S/Cl", 3.208, "Li8 P S5.25 Cl1.25", 5),
    ("001", "Li-P-S-Cl", 1.471, "Li7 P1.5 S5.25 Cl1.25", 11),
    ("001", "S(Li-P-S-Cl)", 3.037, "Li7 P1.5 S7.25 Cl1.25", -5),
    ("110", "Li-S", 2.053, "Li14 P2 S11 Cl2", 0),
    ("110", "Li-P-S-Cl", 1.861, "Li16 P3 S14 Cl3", 1),
    ("101", "Li-S", 2.229, "Li17 P2.5 S13.25 Cl2.75", 1),
    ("101", "Li-P-S-Cl", 2.174, "Li13 P2.5 S11.25 Cl2.75", 1),
    ("101", "Li-S", 2.557, "Li17 P2.5 S13.75 Cl2.25", -1),
    ("101", "Li-P-S-Cl", 2.313, "Li13 P2.5 S11.75 Cl2.25", -1),
    ("011", "Li-S", 2.293, "Li17 P2.5 S13.25 Cl2.75", 1),
    ("011", "Li-P-S-Cl", 1.168, "Li13 P2.5 S11.25 Cl2.75", 1),
    ("011", "Li-S", 2.790, "Li17 P2.5 S13.75 Cl2.25", -1),
    ("011", "Li-P-S-Cl", 3.256, "Li13 P2.5 S13.75 Cl2.25", -1),
)


def table2_for(plane: str, termination: str) -> list[tuple[float, str, int]]:
    """Table 2's (gamma_surf, composition, charge) rows of one plane and termination name (several may share it)."""
    return [(g, c, q) for p, t, g, c, q in TABLE2 if p == plane and t == termination]


# --- METHOD.md 3, 5, 6 and 8 (Tables 3, 4): interfaces --------------------------------------------------------
@dataclass(frozen=True)
class InterfaceRef:
    """The study's values for one interface model (Li plane / argyrodite plane)."""
    li_plane: str
    arg_plane: str
    mismatch_pct: float  # METHOD.md 3
    li_metal_atoms: int  # charge-balanced DFT model, METHOD.md 3
    argyrodite_atoms: int
    gamma_inter_neutral_eV_nm2: float  # METHOD.md 3
    E_str_argyrodite_eV_nm2: float  # Table 3, METHOD.md 8
    E_str_li_eV_nm2: float  # Table 3, METHOD.md 8 (see E_STR_LI_READING)
    energy_rmse_meV_atom: float  # final model on 500 AIMD frames, METHOD.md 5
    force_rmse_meV_A: float
    mlmd_atoms: int  # large MLMD cell, METHOD.md 6

    @property
    def name(self) -> str:
        return f"({self.li_plane})/({self.arg_plane})"


INTERFACES = (
    InterfaceRef("100", "100", 0.37, 99, 84, -7.807, -0.074, 0.229, 4.5, 46.8, 2220),
    InterfaceRef("100", "010", 0.37, 108, 56, -8.584, 0.802, 0.011, 3.1, 35.9, 2352),
    InterfaceRef("011", "011", 0.37, 108, 117, -12.947, 0.618, 0.417, 3.1, 44.7, 2596),
)
INTERFACE_SECTIONS = {"mismatch_pct": "3", "atoms": "3", "gamma_inter_neutral_eV_nm2": "3", "E_str": "8 (Table 3)",
                      "rmse": "5", "mlmd_atoms": "6"}
#: Table 3 lists Li-metal E_str for "(100)", "(100) symmetrised" and "(011)"; our reading: the (100)/(100) model is
#: the one made symmetric by removing a Li(100) layer (METHOD.md 3), so it takes the symmetrised value.
E_STR_LI_READING = "Li (100) symmetrised -> (100)/(100); Li (100) -> (100)/(010); Li (011) -> (011)/(011)"
TABLE3_E_STR_eV_nm2 = {"argyrodite (100)": -0.074, "argyrodite (010)": 0.802, "argyrodite (011)": 0.618,
                       "Li (100)": 0.011, "Li (100) symmetrised": 0.229, "Li (011)": 0.417}


def interface_ref(li_plane: str | None, arg_plane: str | None) -> InterfaceRef | None:
    """The study's interface with this Li plane and argyrodite plane (e.g. "100", "010"), if it has one."""
    for r in INTERFACES:
        if r.li_plane == str(li_plane) and r.arg_plane == str(arg_plane):
            return r
    return None


# --- METHOD.md 5: active learning -----------------------------------------------------------------------------
AL = {
    "initial_frames": Ref(450, "frames", "5", "300 bulk AIMD + 100 Li AIMD + 50 interface relaxation"),
    "iterations": Ref(6, "iterations", "5", "converged after 6 iterations"),
    "frames_added": Ref(1401, "frames", "5"),
    "dataset_final": Ref(1851, "frames", "5", "dataset when the loop converged"),
    "dataset_with_products": Ref(2151, "frames", "5", "with Li3P, Li2S, LiCl AIMD (100 each)"),
}

# --- METHOD.md 7: MD analysis of (100)/(100) --------------------------------------------------------------------
ANALYSIS = {
    "cn_S-Li": Ref(8, "neighbours", "7", "rises to ~8 within 500 ps"),
    "cn_P-Li": Ref(10, "neighbours", "7", "rises to ~10 within 500 ps"),
    "cn_S-P": Ref(0, "neighbours", "7", "falls to 0"),
    "sei_thickness_A": Ref(64, "A", "7", "(100)/(100) 400 K: ~64 A at 500 ps, max ~66 A at 1 ns, settles at ~64 A"),
    "crystallinity_amorphous_percent": Ref((50, 55), "%", "7", "amorphous SEI"),
    "crystallinity_crystalline_percent": Ref(80, "%", "7", "crystalline SEI: just under 80 %"),
    "sei_composition_x_y": Ref((0.14, 0.15), "fraction", "7", "Li2 S(1-x-y) P(x) Cl(y): x, y = 0.14-0.15"),
}
#: Table 5 (METHOD.md 7), (100)/(100) at 400 K, ns
EVENTS_ns = {
    "decomposition_end_ns": Ref(0.39, "ns", "7 (Table 5)", "(100)/(100) 400 K"),
    "crystallisation_start_ns": Ref(0.24, "ns", "7 (Table 5)", "(100)/(100) 400 K"),
    "crystallisation_end_ns": Ref(2.43, "ns", "7 (Table 5)", "(100)/(100) 400 K"),
}
#: Li flux (atoms/nm2/ns), (100)/(100) at 400 K, (left to right, right to left) (METHOD.md 7)
FLUX = {
    "interface": Ref((65.25, 64.12), "atoms/nm2/ns", "7", "(100)/(100) 400 K, L->R / R->L"),
    "amorphous_sei": Ref((12.94, 12.26), "atoms/nm2/ns", "7", "(100)/(100) 400 K, 1 ns window"),
    "crystalline_sei": Ref((0.23, 0.23), "atoms/nm2/ns", "7", "(100)/(100) 400 K, 4-5 ns"),
    "bulk_argyrodite": Ref((35.1, 37.0), "atoms/nm2/ns", "7", "bulk argyrodite"),
}
#: which of our (membrane, flux window) pairs compares with which of the study's values (our membrane names from
#: argyro_fw.analysis.pipeline, window names from the study config's analysis.flux_windows; None: the whole run).
#: The study's amorphous-SEI membrane sits at 1/4 of the electrolyte (METHOD.md 7); where its bulk-argyrodite value
#: was measured METHOD.md does not say, so no membrane of ours is compared with it.
FLUX_MEMBRANE_REF = {("interface", None): "interface", ("electrolyte_quarter", "amorphous_sei"): "amorphous_sei",
                     ("electrolyte_quarter", "crystalline_sei"): "crystalline_sei"}
#: the interface and temperature the section 7 values are for
ANALYSIS_INTERFACE = ("100", "100")
ANALYSIS_TEMPERATURE_K = 400.0
