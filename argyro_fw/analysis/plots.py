"""One PNG per time series (and per RDF / flux / MSD) of an argyro HDF5 file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def plot_h5(path: str | Path, out_dir: str | Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name):
        p = out / f"{name}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)

    with h5py.File(path, "r") as h:
        if "time_ps" in h:
            t = h["time_ps"][:] / 1000.0
            series = [(k, h[k]) for k in ("ps4_intact_fraction", "crystallinity_percent", "sei/li_per_anion")]
            series += [(f"coordination/{k}", h[f"coordination/{k}"]) for k in h.get("coordination", {})]
            for key, ds in series:
                fig, ax = plt.subplots(figsize=(6, 3.5))
                ax.plot(t, ds[:], lw=1)
                ax.set_xlabel("time (ns)")
                ax.set_ylabel(f"{key.split('/')[-1]} ({ds.attrs.get('units', '')})")
                ax.set_title(key)
                save(fig, key.replace("/", "_"))
            for key, labels in (("sei/thickness_A", ["above argyrodite", "below argyrodite"]), ("sei/composition", ["S", "P", "Cl"])):
                y = h[key][:]
                fig, ax = plt.subplots(figsize=(6, 3.5))
                if key == "sei/thickness_A" and "sei/thickness_total_A" in h:
                    ax.plot(t, h["sei/thickness_total_A"][:], lw=1.2, color="k", label="total")
                for k, lab in enumerate(labels):
                    ax.plot(t, y[:, k], lw=1, label=lab)
                ax.set_xlabel("time (ns)")
                ax.set_ylabel(f"{key.split('/')[-1]} ({h[key].attrs.get('units', '')})")
                ax.legend()
                save(fig, key.replace("/", "_"))
            for name in h.get("flux", {}):
                g = h[f"flux/{name}"]
                fig, ax = plt.subplots(figsize=(6, 3.5))
                ax.plot(t, g["cumulative_lr"][:], label=f"L->R ({g.attrs['flux_lr']:.3g} /nm2/ns)")
                ax.plot(t, g["cumulative_rl"][:], label=f"R->L ({g.attrs['flux_rl']:.3g} /nm2/ns)")
                ax.set_xlabel("time (ns)")
                ax.set_ylabel("cumulative Li crossings")
                ax.set_title(f"flux {name} (z = {g.attrs['position_frac']:.3f})")
                ax.legend()
                save(fig, f"flux_{name}")
        if "rdf" in h:
            r = h["rdf/r_A"][:]
            fig, ax = plt.subplots(figsize=(6, 3.5))
            for name in h["rdf"]:
                if name != "r_A":
                    ax.plot(r, h[f"rdf/{name}"][:], label=name)
            ax.set_xlabel("r (Angstrom)")
            ax.set_ylabel("g(r)")
            ax.legend()
            save(fig, "rdf")
        for sp in h.get("diffusion", {}):
            g = h[f"diffusion/{sp}"]
            fig, ax = plt.subplots(figsize=(6, 3.5))
            dt, msd, err = g["dt_ps"][:], g["msd_A2"][:], g["msd_std_A2"][:]
            ax.plot(dt, msd)
            ax.fill_between(dt, msd - err, msd + err, alpha=0.3)
            ax.set_xlabel("dt (ps)")
            ax.set_ylabel("MSD (Angstrom^2)")
            ax.set_title(f"{sp}: D = {g['D_cm2_s'][()]:.3g} cm2/s")
            save(fig, f"msd_{sp}")
        if "arrhenius" in h:
            T = h["temperature_K"][:]
            for q, col, unit in (("D", "D_cm2_s", "cm2/s"), ("sigma", "sigma_S_cm", "S/cm")):
                if f"arrhenius/{q}" not in h or col not in h:
                    continue
                fig, ax = plt.subplots(figsize=(6, 3.5))
                ax.semilogy(1000.0 / T, h[col][:], "o")
                a = h[f"arrhenius/{q}"].attrs
                x = np.linspace(1000 / max(T.max(), 300), 1000 / 300.0, 50)
                ax.semilogy(x, a["prefactor"] * np.exp(-a["Ea_eV"] / (8.617333262e-5 * 1000.0 / x)), "-",
                            label=f"Ea = {a['Ea_eV']:.3f} +- {a.get('Ea_std_eV', float('nan')):.3f} eV")
                ax.set_xlabel("1000 / T (1/K)")
                ax.set_ylabel(f"{q} ({unit})")
                ax.legend()
                save(fig, f"arrhenius_{q}")
    return written
