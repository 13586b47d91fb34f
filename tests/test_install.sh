#!/usr/bin/env bash
# test_install.sh — `make install` puts the program and, in a build with
# CUDA, the module ancora-cuda.so in $(pkglibdir); the installed program
# finds the installed module. Installs with DESTDIR into a temporary
# folder (the program looks for PREFIX/pkglibdir beside PREFIX/bindir, so a
# staged tree works as installed) and checks with LD_DEBUG which module file
# it opened. Needs make; runs the build tree's Makefile.
set -u
ANCORA=${ANCORA:-./ancora}
BUILD=$(cd "$(dirname "$ANCORA")" && pwd)
MAKE=${MAKE:-make}
command -v "$MAKE" >/dev/null || { echo "SKIP: no make"; exit 77; }
[ -f "$BUILD/Makefile" ] || { echo "SKIP: $BUILD has no Makefile"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
var() { sed -n "s/^$1 = //p" "$BUILD/Makefile" | head -1; }

stage=$tmp/stage
# a make of its own (not the caller's jobserver); everything is built already
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "$MAKE" -s -C "$BUILD" install DESTDIR="$stage" >"$tmp/log" 2>&1 \
  || { fail "make install: $(tail -5 "$tmp/log")"; exit 1; }
prefix=$(var prefix)
bin=$(find "$stage" -type f -name ancora -perm -u+x | head -1)
[ -n "$bin" ] && ok "installed the program: ${bin#$stage}" || fail "no program installed under $stage"
[ -n "$bin" ] || exit 1
[ -n "$(find "$stage" -name ancora.1)" ] && ok "installed the man page" || fail "no man page installed"

if "$ANCORA" --version | grep -q cuda; then
  mod=$(find "$stage" -name ancora-cuda.so | head -1)
  [ -n "$mod" ] && ok "installed the module: ${mod#$stage}" || { fail "no ancora-cuda.so installed"; exit 1; }
  case "${mod#$stage}" in "$prefix"/lib*/ancora/ancora-cuda.so) ;; *) fail "the module is not in pkglibdir: ${mod#$stage}";; esac
  # the installed program opens the installed module (and reaches its runtime)
  LD_DEBUG=files "$bin" --version >"$tmp/out" 2>"$tmp/ld"
  grep -q "file=$mod " "$tmp/ld" && ok "the installed program opens $mod" \
    || fail "the installed program did not open $mod: $(grep -m3 'ancora-cuda' "$tmp/ld")"
  grep -q "module is missing" "$tmp/out" && fail "installed program: $(cat "$tmp/out")"
else
  [ -z "$(find "$stage" -name 'ancora-cuda.so')" ] && ok "no module in a build without CUDA" \
    || fail "a module was installed by a build without CUDA"
fi
exit $((fails > 0))
