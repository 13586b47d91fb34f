#!/usr/bin/env bash
# test_bad_models.sh — how the program treats bad model files: `ancora gguf
# info FILE` and `ancora run -m FILE -n 1` must exit 1 with a message
# "ancora: ..." naming the file, never crash or hang, and `run` must print
# nothing on stdout. Also `ancora gguf info` on the real stories260K.gguf.
# Needs $ANCORA (the built program) and the shared test models.
# Exit status (automake): 0 pass, 1 fail, 77 skip.
set -u

if [ -z "${ANCORA:-}" ] || [ ! -x "$ANCORA" ] || [ -d "$ANCORA" ]; then
    echo "SKIP: \$ANCORA does not name a built program (got '${ANCORA:-}')"
    exit 77
fi
models=${ANC_MODELS_DIR:-../shared/models}
if [ ! -d "$models" ]; then
    echo "SKIP: test models folder $models is absent"
    exit 77
fi
stories=$models/stories260K.gguf
if [ ! -r "$stories" ]; then
    echo "missing test model $stories" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ancora-bad-models.XXXXXX") || exit 1
keep=0
cleanup() {
    if [ "$keep" = 0 ]; then rm -rf "$tmp"; else echo "the failing inputs are kept in $tmp" >&2; fi
}
trap cleanup EXIT

failures=0
checks=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
    keep=1
}

# Crash reports from the C runtime or the sanitizers.
crash_re='Segmentation|Aborted|core dumped|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Assertion .* failed'

# check_bad FILE ARGS...: runs "$ANCORA" ARGS (ARGS name FILE) and checks
# that it refuses the file properly.
check_bad() {
    local file=$1
    shift
    local what="ancora $* [$(basename -- "$file")]"
    local out=$tmp/.stdout err=$tmp/.stderr rc
    checks=$((checks + 1))
    timeout 30 "$ANCORA" "$@" >"$out" 2>"$err" </dev/null
    rc=$?
    if [ "$rc" = 124 ]; then
        fail "$what: still running after 30 s (hung?)"
        return
    fi
    [ "$rc" = 1 ] || fail "$what: exit status $rc, expected 1"
    if [ "$(head -c 8 "$err")" != "ancora: " ]; then
        fail "$what: stderr does not start with 'ancora: ': $(head -c 300 "$err")"
    fi
    if ! grep -qF -- "$(basename -- "$file")" "$err"; then
        fail "$what: the message does not name the file: $(head -c 300 "$err")"
    fi
    if grep -qE "$crash_re" "$out" "$err"; then
        fail "$what: crashed: $(grep -hE "$crash_re" "$out" "$err" | head -n 3)"
    fi
    if [ "$1" = run ] && [ -s "$out" ]; then
        fail "$what: printed on stdout: $(head -c 200 "$out")"
    fi
}

# ---- the bad files ---------------------------------------------------------
bad=$tmp/bad
mkdir "$bad" || exit 1
size=$(wc -c <"$stories")

: >"$bad/empty.gguf"
for n in 3 4 16 24 100 5000 14176 600000 $((size - 1)); do
    head -c "$n" "$stories" >"$bad/truncated-$n.gguf"
done
head -c 20000 "$stories" >"$bad/truncated with spaces.gguf"
{ printf 'GGUX'; tail -c +5 "$stories"; } >"$bad/wrong-magic.gguf"
{ printf 'GGUF\001\000\000\000'; tail -c +9 "$stories"; } >"$bad/version1.gguf"
{ printf 'GGUF\143\000\000\000'; tail -c +9 "$stories"; } >"$bad/version99.gguf"
# header claiming 2^62 key/value pairs
{ printf 'GGUF\003\000\000\000'; printf '\000\000\000\000\000\000\000\000';
  printf '\000\000\000\000\000\000\000\100'; tail -c +25 "$stories"; } >"$bad/huge-kv-count.gguf"
# header claiming 2^62 tensors
{ printf 'GGUF\003\000\000\000'; printf '\000\000\000\000\000\000\000\100';
  tail -c +17 "$stories"; } >"$bad/huge-tensor-count.gguf"
head -c 65536 /dev/urandom >"$bad/random.gguf"
{ printf 'GGUF\003\000\000\000'; head -c 4096 /dev/urandom; } >"$bad/random-after-header.gguf"
head -c 300 "$ANCORA" >"$bad/not-a-model.gguf"  # some other binary format
mkdir "$bad/a-directory.gguf"

for f in "$bad"/*; do
    check_bad "$f" gguf info "$f"
    check_bad "$f" run -m "$f" -n 1
done
check_bad "$bad/missing.gguf" gguf info "$bad/missing.gguf"
check_bad "$bad/missing.gguf" run -m "$bad/missing.gguf" -n 1
# A FIFO must be refused at once, not waited on.
if mkfifo "$bad/a-fifo.gguf" 2>/dev/null; then
    check_bad "$bad/a-fifo.gguf" gguf info "$bad/a-fifo.gguf"
    check_bad "$bad/a-fifo.gguf" run -m "$bad/a-fifo.gguf" -n 1
fi

# ---- the good file -------------------------------------------------------------
checks=$((checks + 1))
timeout 30 "$ANCORA" gguf info "$stories" >"$tmp/info.out" 2>"$tmp/info.err" </dev/null
rc=$?
[ "$rc" = 0 ] || fail "ancora gguf info $stories: exit status $rc: $(head -c 300 "$tmp/info.err")"
grep -q 'blk\.0\.attn_q\.weight' "$tmp/info.out" ||
    fail "ancora gguf info $stories: no line mentions blk.0.attn_q.weight"
if grep -qE "$crash_re" "$tmp/info.out" "$tmp/info.err"; then
    fail "ancora gguf info $stories: crash report in the output"
fi

if [ "$failures" -gt 0 ]; then
    echo "$failures problem(s) found in $checks checks" >&2
    exit 1
fi
echo "all $checks checks passed"
exit 0
