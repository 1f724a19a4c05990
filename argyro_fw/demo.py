"""`argyro demo`: the stages that exist, end to end, on the embedded database.

Starts (or reuses) an embedded MongoDB under DIR/db, writes DIR/launchpad with `argyro init`,
adds the demo workflow and runs it with rlaunch rapidfire in this process, then prints what the
database holds. Rerunning it resumes: COMPLETED fireworks are not run again.
"""

from __future__ import annotations

import socket
from pathlib import Path

from .db.embedded import EmbeddedServer, port_in_use
from .launchpad import get_launchpad, init_files
from .settings import DBSettings

DEMO_WF_NAME = "argyro-demo"


def _free_port(start: int = 27117) -> int:
    """The first free port from ``start`` (the demo keeps off 27017, the default MongoDB port)."""
    for port in range(start, start + 200):
        if not port_in_use("127.0.0.1", port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_server(directory: Path) -> int:
    """Start the demo's embedded server unless it already runs; returns its port."""
    server = EmbeddedServer(directory / "db")
    st = server.status()
    if st.running and server.ping(st.port):
        return st.port
    return server.start(port=_free_port()).port


def demo_workflow(workdir: Path):
    """The demo DAG: every stage that exists, at toy sizes, with clearly named stand-ins.

    structures -> VASP inputs (relax, AIMD, label) -> parse a real VASP run -> toy MACE foundation
    -> active learning (CHGNet labeller stand-in, 3-model committee, 1 iteration) -> LAMMPS CPU
    MD of a small Li | argyrodite cell with a committee model -> analysis (HDF5, PNG, MongoDB).
    """
    from fireworks import Firework, Workflow
    from fireworks.user_objects.firetasks.fileio_tasks import FileTransferTask
    from pymatgen.io.ase import AseAtomsAdaptor

    from .analysis.tasks import AnalyzeTrajectoryTask
    from .demo_tasks import ToyFoundationTask, demo_interface
    from .dft.tasks import ParseVaspToDb, WriteVaspInputs
    from .md.protocol import MDProtocol
    from .md.tasks import RunLammpsMDTask
    from .mlip.al_tasks import active_learning_workflow
    from .structures.bulk import ordered_argyrodite

    bulk = ordered_argyrodite()
    cell = AseAtomsAdaptor.get_structure(demo_interface())
    fws = []
    for kind, opts in [("relax", {"system": "bulk"}), ("aimd", {"temperature": 600, "ps": 40, "system": "bulk"}),
                       ("label", {})]:
        fws.append(Firework([WriteVaspInputs(structure=bulk.as_dict(), kind=kind, options=opts, potcar=None)],
                            name=f"dft-inputs-{kind}-Li6PS5Cl", spec={"argyro_stage": "dft-inputs"}))
    ref = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "vasp" / "Al-relax"
    if ref.is_dir():
        fws.append(Firework(
            [FileTransferTask(mode="copy", files=[str(ref / f) for f in ("INCAR", "KPOINTS", "POSCAR", "vasprun.xml.gz")],
                              dest="."),
             ParseVaspToDb(kind="relax", label="Al-relax (real VASP output)", config_type="reference")],
            name="dft-parse-reference", spec={"argyro_stage": "dft-parse"}))
    mdir = workdir / "models"
    mdir.mkdir(parents=True, exist_ok=True)
    foundation = Firework([ToyFoundationTask(workdir=str(mdir))], name="mlip-toy-foundation",
                          spec={"argyro_stage": "mlip"})
    al = active_learning_workflow(dict(
        workdir=str(workdir / "al"), foundation_model=str(mdir / "toy_foundation.model"), name="demo-al",
        structure=cell.as_dict(), temperatures=[600], explore_steps=20, record_every=2, n_train=6, n_valid=2,
        committee_size=3, committee_md_steps=12, committee_record_every=3, select_k=3, max_iterations=1,
        threshold=0.05, explorer="chgnet", labeller="chgnet",
        train_overrides=dict(max_num_epochs=6, batch_size=2, start_stage_two=4, r_max=4.0, num_channels=8, ema=False,
                             lr=0.01)),
        name="demo-active-learning")
    al_fws = al.fws
    al_root = [f for f in al_fws if f.name == "al-00-explore-label"][0]
    al_last = [f for f in al_fws if f.name == "al-01-md-select"][0]
    p = MDProtocol(temperature=400, nvt_ps=0.2, npt_ns=0.0003, dump_every=10, thermo_every=10, restart_every=100)
    model = workdir / "al" / "iter_01" / "model_11" / "committee_11.model"
    md = Firework([RunLammpsMDTask(run_dir=str(workdir / "md_400K"), model=str(model), protocol=p.to_dict(),
                                   structure=cell.as_dict())], name="md-lammps-cpu-400K", parents=[al_last],
                  spec={"argyro_stage": "md"})
    ana = Firework([AnalyzeTrajectoryTask(fmt="lammps-dump", type_map=p.elements, interface="demo Li|Li6PS5Cl",
                                          temperature_K=400.0)], name="analysis-400K", parents=[md],
                   spec={"argyro_stage": "analysis"})
    links = {fw: [] for fw in fws + [foundation, md, ana]}
    links[foundation] = [al_root]
    wf_links = dict(al.links)
    all_fws = fws + [foundation] + al_fws + [md, ana]
    # foundation -> explore; AL internal links; select -> md -> analysis
    lk = {f.fw_id: [c for c in wf_links.get(f.fw_id, [])] for f in al_fws}
    lk[foundation.fw_id] = [al_root.fw_id]
    lk[al_last.fw_id] = lk.get(al_last.fw_id, []) + [md.fw_id]
    lk[md.fw_id] = [ana.fw_id]
    return Workflow(all_fws, lk, name=DEMO_WF_NAME, metadata={"argyro": "demo"})


def run_demo(directory: str | Path = "demo-output") -> int:
    from fireworks.core.fworker import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    port = ensure_server(d)
    print(f"[1/4] embedded database on 127.0.0.1:{port} (data in {d / 'db'})")
    settings = DBSettings(host="127.0.0.1", port=port, name="argyro_demo")
    init_files(settings, d / "launchpad", site="local", worker_name="argyro-demo")
    lp = get_launchpad(d / "launchpad" / "my_launchpad.yaml")
    print(f"[2/4] launchpad files in {d / 'launchpad'}")
    if lp.workflows.count_documents({"name": DEMO_WF_NAME}) == 0:
        lp.reset("", require_password=False)
        wf = demo_workflow(d)
        lp.add_wf(wf)
        print(f"[3/4] added workflow {DEMO_WF_NAME!r} with {len(wf.fws)} fireworks")
    else:
        from .recovery import recover

        rep = recover(lp, lost_after_s=5, observe_s=1)
        print(f"[3/4] resuming workflow {DEMO_WF_NAME!r} (rerun after interruption: {rep.lost_fw_ids + rep.orphaned_fw_ids})")
    (d / "runs").mkdir(exist_ok=True)
    import os

    import logging

    cwd = os.getcwd()
    try:
        os.chdir(d / "runs")
        n = lp.fireworks.count_documents({})
        print(f"      running {n} fireworks with rlaunch rapidfire (log: {d / 'runs' / 'rlaunch.log'}) ...", flush=True)
        root = logging.getLogger()
        for h in list(root.handlers):
            root.removeHandler(h)
        logging.basicConfig(filename=str(d / "runs" / "rlaunch.log"), level=logging.INFO, force=True)
        from tqdm import tqdm

        with tqdm(total=n, unit="firework", desc="demo") as bar:
            def progress(*_):
                bar.n = lp.fireworks.count_documents({"state": "COMPLETED"})
                bar.refresh()

            import threading

            stop = threading.Event()

            def poll():
                while not stop.wait(1.0):
                    progress()

            t = threading.Thread(target=poll, daemon=True)
            t.start()
            try:
                rapidfire(lp, FWorker.from_file(str(d / "launchpad" / "my_fworker.yaml")), strm_lvl="ERROR")
            finally:
                stop.set()
                progress()
    finally:
        os.chdir(cwd)
    print("[4/4] results")
    rc = print_summary(lp)
    _stop_hint(d)
    return rc


def print_summary(lp) -> int:
    states = {}
    print(f"  {'firework':32s} {'stage':12s} state")
    for fw in lp.fireworks.find({}, {"name": 1, "state": 1, "spec.argyro_stage": 1}).sort("fw_id", 1):
        states[fw["name"]] = fw["state"]
        print(f"  {fw['name']:32s} {fw.get('spec', {}).get('argyro_stage', ''):12s} {fw['state']}")
    calcs = list(lp.db.calculations.find({}, {"label": 1, "formula": 1, "final_energy_eV": 1, "n_ionic_steps": 1}))
    for c in calcs:
        print(f"  calculation {c.get('label')}: {c['formula']}, {c['n_ionic_steps']} ionic steps, E = {c['final_energy_eV']:.6f} eV")
    for r in lp.db.al_iterations.find({}).sort("iteration", 1):
        u = r["uncertainty_eV_A"]
        rm = [v["force_rmse_meV_A"] for v in r["validation"].values()]
        print(f"  active learning iteration {r['iteration']}: dataset {r['dataset_size']} frames, committee force "
              f"uncertainty p95 {u['p95']:.3f} eV/A, force RMSE {min(rm):.0f}-{max(rm):.0f} meV/A, "
              f"{r.get('stopped', 'continued')}")
    for a in lp.db.analyses.find({}):
        f = a["results"]["final"]
        cn = f["cn"]
        def num(x, fmt=".2f"):
            return "n/a" if x is None else format(x, fmt)

        sei = ", ".join(num(t, ".1f") for t in f["sei_thickness_A"])
        print(f"  analysis {a.get('interface')} {a.get('temperature_K')} K ({a['results']['n_frames']} frames): "
              f"PS4 intact {num(f['ps4_intact_fraction'])}, crystallinity {num(f['crystallinity_percent'], '.1f')} %, "
              f"CN S-P {num(cn['S-P'])}, S-Li {num(cn['S-Li'])}, SEI thickness {sei} A")
        print(f"    HDF5 {a['h5_path']}; plots {len(a.get('plots', []))} PNG")
    from .report import results_rows, results_table

    print()
    print(results_table(results_rows(lp.db)))
    bad = [n for n, s in states.items() if s != "COMPLETED"]
    if bad:
        print(f"  not completed: {bad}")
        return 1
    print(f"  all {len(states)} fireworks COMPLETED")
    return 0


def _stop_hint(d: Path) -> None:
    print(f"The demo database keeps running for queries (argyro results -l {d / 'launchpad' / 'my_launchpad.yaml'}); "
          f"stop it with: argyro db stop --path {d / 'db'}  (or make clean-demo)")
