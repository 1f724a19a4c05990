"""Run FireWorks' own test suite (it ships inside the wheel) against a MongoDB on localhost:27017.

The suite is run on a *copy* of the installed package (it gzips its own test files), with the
test-data files that the wheel leaves out restored from ../shared/data/fireworks-tests, and with
argyro's run-time fixes (argyro_fw.compat) loaded through a conftest.py.

Usage: python tests/fireworks_suite.py [--json OUT]   (prints 'N passed, N failed, N skipped')
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import fireworks

REPO = Path(__file__).resolve().parent.parent
MISSING_DATA = REPO.parent / "shared" / "data" / "fireworks-tests"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write {'passed','failed','skipped','failures'} here")
    ap.add_argument("--no-compat", action="store_true", help="run without argyro's fixes (to see FireWorks as shipped)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fwsuite-") as tmp:
        work = Path(tmp)
        shutil.copytree(Path(fireworks.__file__).parent, work / "fireworks")
        if MISSING_DATA.is_dir():
            shutil.copytree(MISSING_DATA / "fireworks", work / "fireworks", dirs_exist_ok=True)
        if not args.no_compat:
            (work / "conftest.py").write_text("from argyro_fw import compat\ncompat.install()\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "300", "-rf", "fireworks"],
            cwd=work, capture_output=True, text=True,
        )
    out = proc.stdout
    counts = {k: int(m.group(1)) if (m := re.search(rf"(\d+) {k}", out.splitlines()[-1] if out else "")) else 0
              for k in ("passed", "failed", "skipped", "error")}
    failures = re.findall(r"^FAILED (\S+)", out, re.M) + re.findall(r"^ERROR (\S+)", out, re.M)
    result = dict(counts, failures=failures)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print("\n".join(out.splitlines()[-15:]))
    print(f"fireworks suite: {counts['passed']} passed, {counts['failed'] + counts['error']} failed, {counts['skipped']} skipped")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
