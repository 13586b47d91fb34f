#!/usr/bin/env bash
# test_cuda_module.sh — the CUDA backend as a module loaded on demand
# (kernels/cuda/cuda_loader.c), through the real program: with
# ANCORA_CUDA_MODULE naming a missing file, a text file, a shared object
# that is not our module, a shared object that needs a library that does
# not exist, and a copy of the real module whose cuBLAS dependency cannot
# be resolved, `--backend auto` runs on the CPU (the golden text, nothing
# said about a GPU) and `--backend cuda` fails with one line saying which
# (exit 1); --version says why cuda cannot be used; a CPU run, and an auto
# run on a machine without an NVIDIA driver, map no CUDA library at all.
# Skips (77) in a build without CUDA. Needs ../shared/models/stories260K.gguf;
# the tiny shared objects need a C compiler (cc), that part skips without.
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-../shared/models}
BUILD=$(dirname "$ANCORA")
[ -d "$MODELS" ] || { echo "SKIP: no models folder $MODELS"; exit 77; }
"$ANCORA" --version | grep -q cuda || { echo "SKIP: this build has no CUDA backend"; exit 77; }
M=$MODELS/stories260K.gguf
GOLD=$SRC/tests/golden/stories260K_greedy_bos.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data
unset ANCORA_MODEL ANCORA_CUDA_MODULE
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
driver=no
for f in /dev/nvidiactl /dev/nvidia0 /proc/driver/nvidia/version /dev/dxg; do [ -e $f ] && driver=yes; done

# check NAME MODULE PATTERN: auto runs on the CPU silently; cuda fails with
# exactly one line matching PATTERN and exit 1
check() {
  local name=$1 mod=$2 pat=$3 rc
  ANCORA_CUDA_MODULE=$mod "$ANCORA" run -m "$M" --temp 0 -n 256 >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$GOLD"; then
    if [ $driver = no ] && grep -qiE 'gpu|cuda' "$tmp/err"; then
      fail "$name: auto must be silent without a driver: $(cat "$tmp/err")"
    else ok "$name: auto runs on the CPU (golden text)"; fi
  else fail "$name: auto: exit $rc, $(head -c 300 "$tmp/err")"; fi
  ANCORA_CUDA_MODULE=$mod "$ANCORA" run -m "$M" --backend cuda -n 4 >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ] &&
     grep -qE "^ancora: no usable NVIDIA GPU for --backend cuda: $pat" "$tmp/err"; then
    ok "$name: --backend cuda: $(cat "$tmp/err")"
  else fail "$name: --backend cuda: exit $rc, want one line matching '$pat': $(cat "$tmp/err")"; fi
}

check "missing file" "$tmp/nowhere/ancora-cuda.so" \
  "the CUDA module is missing \(ANCORA_CUDA_MODULE=$tmp/nowhere/ancora-cuda.so cannot be read\)"
echo "not a shared object" >"$tmp/text.so"
check "text file" "$tmp/text.so" "$tmp/text.so is not a loadable CUDA module \("
ANCORA_CUDA_MODULE=$tmp/text.so "$ANCORA" --version >"$tmp/out"
grep -q "^built but not usable here: cuda: $tmp/text.so is not a loadable CUDA module" "$tmp/out" \
  && ! grep -q "^ancora .*cuda" "$tmp/out" && ok "--version: cuda not listed, and why" \
  || fail "--version with a broken module: $(cat "$tmp/out")"

# a copy of the real module whose cuBLAS cannot be found: the library's
# name patched in the dynamic string table (same length), nothing else
if [ -f "$BUILD/ancora-cuda.so" ]; then
  perl -0777 -pe 's/libcublas\.so\./libcuMISS\.so\./g' "$BUILD/ancora-cuda.so" >"$tmp/nolib.so"
  check "module without its cuBLAS" "$tmp/nolib.so" \
    "the CUDA module $tmp/nolib.so cannot load its libraries: libcuMISS\.so\.[0-9]+ is missing"
else
  fail "$BUILD/ancora-cuda.so was not built"
fi

if command -v cc >/dev/null; then
  # a shared object that needs a library which is gone once it is built
  echo 'int anc_missing_dep(void) { return 1; }' >"$tmp/dep.c"
  echo 'int anc_missing_dep(void); int anc_user(void) { return anc_missing_dep(); }' >"$tmp/user.c"
  cc -shared -fPIC -o "$tmp/libancora-gone.so" "$tmp/dep.c" &&
    cc -shared -fPIC -o "$tmp/needs-gone.so" "$tmp/user.c" -L"$tmp" -lancora-gone &&
    rm "$tmp/libancora-gone.so" || fail "could not build the test shared objects"
  check "needs a missing library" "$tmp/needs-gone.so" \
    "the CUDA module $tmp/needs-gone.so cannot load its libraries: libancora-gone\.so is missing"
  # a shared object that loads but is not our module
  echo 'int something_else(void) { return 0; }' >"$tmp/other.c"
  cc -shared -fPIC -o "$tmp/other.so" "$tmp/other.c" || fail "could not build other.so"
  check "not our module" "$tmp/other.so" "$tmp/other.so is not a CUDA module of ancora \(no anc_cuda_module_get\)"
else
  echo "skip (no cc): the shared objects with a missing dependency and without the entry point"
fi

# the real module: --version and --backend cuda agree on why (or on a GPU)
"$ANCORA" --version >"$tmp/out"
if grep -q "^ancora .*cuda ([0-9]* device" "$tmp/out"; then
  ok "--version lists cuda: $(head -1 "$tmp/out")"
else
  why=$(sed -n 's/^built but not usable here: cuda: //p' "$tmp/out")
  [ -n "$why" ] || fail "--version says neither cuda nor why not: $(cat "$tmp/out")"
  "$ANCORA" run -m "$M" --backend cuda -n 4 >/dev/null 2>"$tmp/err"
  rc=$?
  [ $rc -eq 1 ] && grep -qF "ancora: no usable NVIDIA GPU for --backend cuda: $why" "$tmp/err" \
    && ok "no GPU here: --version and --backend cuda say: $why" \
    || fail "--backend cuda (exit $rc) and --version disagree: $(cat "$tmp/err") / $why"
fi

# a CPU run maps no CUDA library; neither does auto without a driver
maps_cuda() { LD_DEBUG=files "$@" 2>&1 >/dev/null | grep -E 'file=[^ ]*(ancora-cuda|libcudart|libcublas)'; }
[ -z "$(maps_cuda "$ANCORA" run -m "$M" --backend cpu -n 4)" ] && ok "--backend cpu loads no CUDA library" \
  || fail "--backend cpu loaded: $(maps_cuda "$ANCORA" run -m "$M" --backend cpu -n 4 | head -3)"
if [ $driver = no ]; then
  [ -z "$(maps_cuda "$ANCORA" run -m "$M" -n 4)" ] && ok "auto without a driver loads no CUDA library" \
    || fail "auto without a driver loaded: $(maps_cuda "$ANCORA" run -m "$M" -n 4 | head -3)"
  [ -n "$(maps_cuda "$ANCORA" run -m "$M" --backend cuda -n 4)" ] && ok "--backend cuda does load the module" \
    || fail "--backend cuda did not load the module (LD_DEBUG shows nothing?)"
fi
exit $((fails > 0))
