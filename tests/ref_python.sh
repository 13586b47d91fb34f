# ref_python.sh — sourced by the tests that compare against the NumPy
# reference (tests/reference/*.py): sets $py to the first Python that has
# numpy and the PyPI gguf package ($ANC_REF_PYTHON, $REF_PYTHON, the
# checkout's .venv-ref that scripts/install-deps makes, python3), or skips
# the test (exit 77) saying where it looked. Needs $SRC (the source tree).
py=
for cand in "${ANC_REF_PYTHON:-}" "${REF_PYTHON:-}" "$SRC/.venv-ref/bin/python" python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import gguf, numpy' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python with numpy and gguf (ANC_REF_PYTHON, REF_PYTHON, $SRC/.venv-ref)"; exit 77; }
