#!/bin/sh
# Checks every image build runs (Dockerfile); also usable on a built image or a host install.
#
#   image_checks.sh [--cuda-stub] ldd FILE...       every FILE exists and `ldd FILE` has no "not found"
#   image_checks.sh [--cuda-stub] imports MODULE... `python -W error -c "import MODULE, ..."` succeeds
#                                                   and no warning is issued while importing them (a
#                                                   warning, e.g. cuEquivariance falling back to its slow
#                                                   path, fails the check; one torch deprecation allowed)
#   image_checks.sh [--cuda-stub] libpython MODULE... libpythonX.Y.so, the unversioned name under which
#                                                   lammps.mliap (LAMMPS' ML-IAP Python coupling, imported by
#                                                   mace's ML-IAP model and mace_create_lammps_model) opens
#                                                   the Python library, resolves: linked to the runtime's
#                                                   libpythonX.Y.so.1.0 where only a -dev package would
#                                                   provide it; then `python -c "import MODULE"` for each
#
# --cuda-stub: at build time there is no GPU driver, so libcuda.so.1 (the only library the host's
# driver provides at run time: apptainer --nv, docker --gpus) is resolved from the CUDA toolkit's
# stub (.../lib64/stubs/libcuda.so) through a temporary folder on LD_LIBRARY_PATH. Nothing else is
# allowed to come from the host. ARGYRO_CUDA_STUB=PATH names another stub (tests).
set -eu

stub_dir=""
cleanup() { [ -n "$stub_dir" ] && rm -rf "$stub_dir"; return 0; }
trap cleanup EXIT

if [ "${1:-}" = "--cuda-stub" ]; then
    shift
    stub=""
    for c in ${ARGYRO_CUDA_STUB:-} /usr/local/cuda/lib64/stubs/libcuda.so /usr/local/cuda/targets/x86_64-linux/lib/stubs/libcuda.so \
             /usr/local/cuda/targets/sbsa-linux/lib/stubs/libcuda.so; do
        if [ -f "$c" ]; then stub=$c; break; fi
    done
    if [ -z "$stub" ]; then
        echo "image_checks: --cuda-stub: no libcuda.so stub under /usr/local/cuda" >&2
        exit 2
    fi
    stub_dir=$(mktemp -d)
    ln -s "$stub" "$stub_dir/libcuda.so.1"
    LD_LIBRARY_PATH="$stub_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
fi

mode=${1:-}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
    echo "usage: image_checks.sh [--cuda-stub] ldd FILE... | imports MODULE... | libpython MODULE..." >&2
    exit 2
fi

case "$mode" in
libpython)
    py=${PYTHON:-python}
    name=$("$py" -c 'import sysconfig; print("libpython" + sysconfig.get_config_var("VERSION") + sysconfig.get_config_var("abiflags") + ".so")')
    if ! "$py" -c "import ctypes; ctypes.CDLL('$name')" 2>/dev/null; then
        real=$(find /usr/lib /usr/local/lib /lib -name "$name.1.0" 2>/dev/null | head -1)
        if [ -z "$real" ]; then
            echo "image_checks: no $name.1.0 (install the libpython package of this Python)" >&2
            exit 1
        fi
        ln -s "$(basename "$real")" "$(dirname "$real")/$name"
        ldconfig
        echo "linked $(dirname "$real")/$name -> $(basename "$real")"
    fi
    "$py" -c "import ctypes; ctypes.CDLL('$name')" || { echo "image_checks: $name does not load" >&2; exit 1; }
    for m in "$@"; do
        "$py" -W ignore -c "import $m" || { echo "image_checks: import $m failed" >&2; exit 1; }
    done
    echo "libpython ok: $name loads; imported $*"
    ;;
ldd)
    bad=0
    for f in "$@"; do
        if [ ! -f "$f" ]; then
            echo "image_checks: MISSING $f" >&2
            bad=1
            continue
        fi
        if ! out=$(ldd "$f" 2>&1); then
            echo "image_checks: ldd $f failed: $out" >&2
            bad=1
            continue
        fi
        missing=$(printf '%s\n' "$out" | grep "not found" || true)
        if [ -n "$missing" ]; then
            echo "image_checks: $f cannot load:" >&2
            printf '%s\n' "$missing" >&2
            bad=1
        else
            echo "ldd ok: $f ($(printf '%s\n' "$out" | grep -c '=>') libraries resolved)"
        fi
    done
    exit $bad
    ;;
imports)
    mods=$(printf '%s, ' "$@")
    mods=${mods%, }
    py=${PYTHON:-python}
    fail() {
        echo "image_checks: importing $mods: $1 (e.g. a cuEquivariance ops wheel that does not match this torch" \
             "falls back to the slow path with only a warning)" >&2
        exit 1
    }
    # 1. the plain gate
    "$py" -W error -c "import $mods" || fail "'python -W error -c \"import $mods\"' failed"
    # 2. cuequivariance_ops_torch calls warnings.simplefilter("once") when imported, which turns -W error
    #    off for every later warning: record every warning through showwarning instead. Allowed: torch's
    #    own deprecation of torch.jit.script (torch >= 2.13), which cuequivariance_ops_torch's
    #    triangle_attention module (not used by MACE) triggers at import.
    "$py" - "$@" <<'EOF' || fail "a warning was issued"
import importlib, sys, warnings
seen, bad = [], []
def show(message, category, filename, lineno, file=None, line=None):
    text = f"{category.__name__}: {message} ({filename}:{lineno})"
    allowed = (issubclass(category, DeprecationWarning) and "torch.jit.script" in str(message)
               and filename.replace("\\", "/").endswith("torch/jit/_script.py"))
    (seen if allowed else bad).append(text)
warnings.showwarning = show
warnings.simplefilter("always")
for name in sys.argv[1:]:
    importlib.import_module(name)
    warnings.simplefilter("always")  # undo a module's own filter changes before the next import
for text in seen:
    print("image_checks: allowed warning:", text)
for text in bad:
    print("image_checks: WARNING:", text, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
    echo "imports ok without warnings: $mods"
    ;;
*)
    echo "image_checks: unknown mode '$mode' (ldd | imports)" >&2
    exit 2
    ;;
esac
