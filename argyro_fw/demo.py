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


def _free_port(start: int = 27017) -> int:
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
    """The demo DAG (grows as stages are added): built from the package's own builders."""
    from fireworks import Firework, Workflow
    from fireworks.user_objects.firetasks.fileio_tasks import FileTransferTask
    from pymatgen.core import Lattice, Structure

    from .dft.tasks import ParseVaspToDb, WriteVaspInputs

    li2s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.70), ["Li", "S"], [[0.25, 0.25, 0.25], [0, 0, 0]])
    fws = []
    for kind, opts in [("relax", {"system": "bulk"}), ("aimd", {"temperature": 600, "ps": 40, "system": "bulk"}),
                       ("label", {})]:
        fws.append(Firework([WriteVaspInputs(structure=li2s.as_dict(), kind=kind, options=opts, potcar=None)],
                            name=f"dft-inputs-{kind}-Li2S", spec={"argyro_stage": "dft-inputs"}))
    ref = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "vasp" / "Al-relax"
    if ref.is_dir():
        fws.append(Firework(
            [FileTransferTask(mode="copy", files=[str(ref / f) for f in ("INCAR", "KPOINTS", "POSCAR", "vasprun.xml.gz")],
                              dest="."),
             ParseVaspToDb(kind="relax", label="Al-relax (real VASP output)", config_type="reference")],
            name="dft-parse-reference", spec={"argyro_stage": "dft-parse"}))
    return Workflow(fws, name=DEMO_WF_NAME, metadata={"argyro": "demo"})


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

    cwd = os.getcwd()
    try:
        os.chdir(d / "runs")
        rapidfire(lp, FWorker.from_file(str(d / "launchpad" / "my_fworker.yaml")), strm_lvl="WARNING")
    finally:
        os.chdir(cwd)
    print("[4/4] results")
    return print_summary(lp)


def print_summary(lp) -> int:
    states = {}
    print(f"  {'firework':32s} {'stage':12s} state")
    for fw in lp.fireworks.find({}, {"name": 1, "state": 1, "spec.argyro_stage": 1}).sort("fw_id", 1):
        states[fw["name"]] = fw["state"]
        print(f"  {fw['name']:32s} {fw.get('spec', {}).get('argyro_stage', ''):12s} {fw['state']}")
    calcs = list(lp.db.calculations.find({}, {"label": 1, "formula": 1, "final_energy_eV": 1, "n_ionic_steps": 1}))
    for c in calcs:
        print(f"  calculation {c.get('label')}: {c['formula']}, {c['n_ionic_steps']} ionic steps, E = {c['final_energy_eV']:.6f} eV")
    bad = [n for n, s in states.items() if s != "COMPLETED"]
    if bad:
        print(f"  not completed: {bad}")
        return 1
    print(f"  all {len(states)} fireworks COMPLETED")
    return 0
