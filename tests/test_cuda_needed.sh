#!/usr/bin/env bash
# test_cuda_needed.sh — the program links no CUDA library: in a build with
# the CUDA backend, the dynamic section of `ancora` names none of libcudart,
# libcublas, libcublasLt (the backend is the module ancora-cuda.so, opened
# on demand), while the module does need them. Skips (77) in a build
# without CUDA. Needs readelf (binutils) or objdump.
set -u
ANCORA=${ANCORA:-./ancora}
BUILD=$(dirname "$ANCORA")
[ -x "$ANCORA" ] || { echo "FAIL: $ANCORA was not built"; exit 1; }
if ! "$ANCORA" --version | grep -q cuda; then
  echo "SKIP: this build has no CUDA backend (configured --without-cuda, or no nvcc)"; exit 77
fi
needed() {
  if command -v readelf >/dev/null; then readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
  elif command -v objdump >/dev/null; then objdump -p "$1" | awk '$1 == "NEEDED" {print $2}'
  else echo "SKIP: neither readelf nor objdump is installed" >&2; exit 77
  fi
}
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

prog=$(needed "$ANCORA") || exit $?
[ -n "$prog" ] || fail "no NEEDED entries read from $ANCORA"
bad=$(echo "$prog" | grep -E '^lib(cudart|cublas|cublasLt|cuda)\.so')
[ -z "$bad" ] && echo "ok   ancora needs no CUDA library ($(echo $prog | tr '\n' ' '))" \
  || fail "ancora needs CUDA libraries at link time: $(echo $bad | tr '\n' ' ')"

mod=$BUILD/ancora-cuda.so
[ -f "$mod" ] || fail "the CUDA module $mod was not built"
if [ -f "$mod" ]; then
  mneed=$(needed "$mod")
  echo "$mneed" | grep -q '^libcudart\.so' && echo "$mneed" | grep -q '^libcublas\.so' \
    && echo "ok   the module needs libcudart and libcublas" \
    || fail "the module does not need the CUDA libraries: $(echo $mneed | tr '\n' ' ')"
fi
exit $((fails > 0))
