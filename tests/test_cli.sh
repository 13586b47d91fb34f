#!/usr/bin/env bash
# test_cli.sh — the command-line contract of DESIGN.md, through the real
# program: --help/--version, exit statuses 0/1/2, "ancora: " errors, and
# `run` stdout byte-identical to the independent reference's golden text.
set -u
ANCORA=${ANCORA:-./ancora}
SRC=${ANC_SRCDIR:-.}
MODELS=${ANC_MODELS_DIR:-../shared/models}
[ -d "$MODELS" ] || { echo "SKIP: no models folder $MODELS"; exit 77; }
M=$MODELS/stories260K.gguf
V=$MODELS/ggml-vocab-llama-spm.gguf
G=$SRC/tests/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# no user configuration, no installed default model (the real HOME may have both)
export XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data
unset ANCORA_MODEL
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect STATUS CMD...: run, check the exit status, keep stdout/stderr
expect() {
  local want=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  [ "$got" -eq "$want" ] || fail "exit $got (want $want): $* -- $(head -c 300 "$tmp/err")"
}

# help and version
expect 0 "$ANCORA" --help;            grep -q "Usage: ancora" "$tmp/out" || fail "--help text"
expect 0 "$ANCORA" --version;         grep -q "^ancora [0-9]" "$tmp/out" || fail "--version text"
for sub in run tokenize; do
  expect 0 "$ANCORA" $sub --help;     grep -q "Usage: ancora $sub" "$tmp/out" || fail "$sub --help"
done
expect 0 "$ANCORA" gguf --help;       grep -q "Usage: ancora gguf" "$tmp/out" || fail "gguf --help"
# repl has its own text (it is never full-screen); both name the --db fallback
expect 0 "$ANCORA" repl --help;       grep -q "Usage: ancora repl" "$tmp/out" || fail "repl --help"
grep -q "full-screen interface with live panels" "$tmp/out" && fail "repl --help describes the full-screen interface"
grep -q "line by line, never full-screen" "$tmp/out" || fail "repl --help: no REPL description"
grep -q -- "--theme" "$tmp/out" && fail "repl --help lists --theme, which it does not use"
grep -q "~/.local/share/ancora/history.db" "$tmp/out" || fail "repl --help: --db fallback"
expect 0 "$ANCORA" chat --help;       grep -q "full-screen interface" "$tmp/out" || fail "chat --help"
grep -q "~/.local/share/ancora/history.db" "$tmp/out" || fail "chat --help: --db omits ~/.local/share"
expect 2 "$ANCORA" repl --bogus;      grep -q "see ancora repl --help" "$tmp/err" || fail "repl: usage error points at chat's help"
expect 2 "$ANCORA"
expect 2 "$ANCORA" frobnicate;        grep -q "^ancora: unknown command" "$tmp/err" || fail "unknown command message"

# usage errors: exit 2, one "ancora: " line
expect 2 "$ANCORA" run -m "$M" --temp abc;    grep -q "^ancora: invalid value for --temp" "$tmp/err" || fail "--temp abc message"
expect 2 "$ANCORA" run -m "$M" --temp -1
expect 2 "$ANCORA" run -m "$M" --top-p 1.5
expect 2 "$ANCORA" run -m "$M" -n 1e9
expect 2 "$ANCORA" run -m "$M" --threads 0
expect 2 "$ANCORA" run -m "$M" --cache bogus
expect 2 "$ANCORA" run -m "$M" --bogus-option
expect 2 "$ANCORA" run -m "$M" -p a -f b
expect 2 "$ANCORA" run -m "$M" stray-argument
expect 2 "$ANCORA" run --top-k
env -u ANCORA_MODEL "$ANCORA" run -p hi >/dev/null 2>"$tmp/err"; [ $? -eq 2 ] || fail "no model: want 2"
grep -q "^ancora: no model given" "$tmp/err" || fail "no model message"
grep -q "scripts/fetch-models" "$tmp/err" || fail "no model: the message should say how to get one"
# the default model, where scripts/fetch-models puts it, is used and named
# (a stand-in file under the default's name: the choice is by path)
mkdir -p "$tmp/data/ancora/models"
ln -s "$(cd "$(dirname "$M")" && pwd)/$(basename "$M")" "$tmp/data/ancora/models/SmolLM2-135M-Instruct.Q4_1.gguf"
expect 0 "$ANCORA" run -p "Once" -n 4 --temp 0
grep -q "^ancora: no model given; using the default, $tmp/data/ancora/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/err" \
  || fail "default model not announced: $(head -c 300 "$tmp/err")"
[ -s "$tmp/out" ] || fail "default model: no text"
HOME=$tmp XDG_DATA_HOME=relative/path expect 2 "$ANCORA" run -p hi   # a relative XDG path is ignored (XDG spec)
rm -r "$tmp/data/ancora"

# backends: --version names them; --backend cuda without the backend or a
# GPU is a runtime error with a clear message; auto falls back silently
expect 0 "$ANCORA" --version;         grep -q "backends: cpu (" "$tmp/out" || fail "--version backends"
expect 2 "$ANCORA" run -m "$M" --backend gpu -n 1
grep -q "^ancora: unknown backend 'gpu'" "$tmp/err" || fail "unknown backend message"
if ! "$ANCORA" --version | grep -q cuda; then
  expect 1 "$ANCORA" run -m "$M" --backend cuda -n 1
  grep -q "^ancora: this build of ancora has no CUDA backend" "$tmp/err" || fail "no-CUDA-build message"
elif ! nvidia-smi -L >/dev/null 2>&1; then
  expect 1 "$ANCORA" run -m "$M" --backend cuda -n 1
  grep -q "^ancora: no usable NVIDIA GPU" "$tmp/err" || fail "no-GPU message: $(cat "$tmp/err")"
else
  expect 0 "$ANCORA" run -m "$M" --backend cuda -n 4
fi
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect 0 "$ANCORA" run -m "$M" --backend auto --temp 0 -n 8
  [ ! -s "$tmp/err" ] || ! grep -qi "gpu" "$tmp/err" || fail "auto without a GPU must be silent about it"
fi

# runtime errors: exit 1
expect 1 "$ANCORA" run -m "$tmp/does-not-exist.gguf" -n 1
grep -q "^ancora: .*does-not-exist.gguf" "$tmp/err" || fail "missing file message names the file"
expect 1 "$ANCORA" run -m "$M" -f "$tmp/no-prompt.txt"
expect 1 "$ANCORA" run -m "$V" -n 1     # vocabulary only: no weights
[ -s "$tmp/out" ] && fail "run printed to stdout on error"

# golden: greedy from BOS, byte for byte what the NumPy reference decoded
expect 0 "$ANCORA" run -m "$M" --temp 0 -n 256
cmp -s "$tmp/out" "$G/stories260K_greedy_bos.txt" || fail "greedy from BOS differs from golden text"
expect 0 "$ANCORA" run -m "$M" --temp 0 -n 256 -p ""
cmp -s "$tmp/out" "$G/stories260K_greedy_bos.txt" || fail "empty prompt should equal BOS alone"
expect 0 "$ANCORA" run -m "$M" --temp 0 -n 128 -p "Once upon a time" -t 1
cmp -s "$tmp/out" "$G/stories260K_greedy_prompt.txt" || fail "greedy from 'Once upon a time' differs"
printf 'The big' >"$tmp/p2.txt"
expect 0 "$ANCORA" run -m "$M" --temp 0 -n 128 -f "$tmp/p2.txt"
cmp -s "$tmp/out" "$G/stories260K_greedy_prompt2.txt" || fail "greedy from 'The big' (file) differs"
grep -q "generated 128 tokens" "$tmp/err" || fail "stats on stderr"

# tokenize: ids on one line; the prompt case's ids; stdin; byte-exact
expect 0 "$ANCORA" tokenize -m "$M" -p "Once upon a time"
[ "$(cat "$tmp/out")" = "$(cat "$G/stories260K_greedy_prompt.prompt")" ] || fail "tokenize ids: $(cat "$tmp/out")"
printf 'Once upon a time' | "$ANCORA" tokenize -m "$M" >"$tmp/out2" || fail "tokenize stdin"
cmp -s "$tmp/out" "$tmp/out2" || fail "tokenize stdin differs from -p"
printf 'Once upon a time\n' | "$ANCORA" tokenize -m "$M" --no-bos >"$tmp/out3"
[ "$(cut -d' ' -f1 "$tmp/out3")" != "1" ] || fail "--no-bos still starts with BOS"
[ "$(wc -w <"$tmp/out3")" -eq 5 ] || fail "trailing newline should be one more token: $(cat "$tmp/out3")"
expect 0 "$ANCORA" tokenize -m "$V" -p "Hello world"
[ "$(cat "$tmp/out")" = "1 15043 3186" ] || fail "llama vocab 'Hello world': $(cat "$tmp/out")"

# sampling is deterministic for a seed
"$ANCORA" run -m "$M" -n 40 --seed 9 --temp 1 2>/dev/null >"$tmp/s1"
"$ANCORA" run -m "$M" -n 40 --seed 9 --temp 1 2>/dev/null >"$tmp/s2"
"$ANCORA" run -m "$M" -n 40 --seed 10 --temp 1 2>/dev/null >"$tmp/s3"
cmp -s "$tmp/s1" "$tmp/s2" || fail "same seed gave different text"
cmp -s "$tmp/s1" "$tmp/s3" && fail "different seeds gave the same text"

# ppl: chunked needs 2 x ctx tokens; stream gives a PPL line; CSV and plot
head -c 3000 "$G/stories260K_greedy_bos.txt" >"$tmp/ppl.txt"
expect 0 "$ANCORA" ppl -m "$M" -f "$tmp/ppl.txt" --ctx 64 -q
tail -n 1 "$tmp/out" | grep -Eq '^PPL = [0-9]+\.[0-9]{4} \+/- [0-9]+\.[0-9]{5}$' || fail "chunked PPL line: $(tail -n 1 "$tmp/out")"
expect 0 "$ANCORA" ppl -m "$M" -f "$tmp/ppl.txt" --mode stream --window 32 --sinks 4 --csv "$tmp/nll.csv" --plot -q
tail -n 1 "$tmp/out" | grep -Eq '^PPL = [0-9]+\.[0-9]{4}$' || fail "stream PPL line: $(tail -n 1 "$tmp/out")"
head -n 1 "$tmp/nll.csv" | grep -q '^position,token,nll$' || fail "csv header"
[ "$(wc -l <"$tmp/nll.csv")" -gt 100 ] || fail "csv rows"
grep -q "NLL per token" "$tmp/out" || fail "plot title"
expect 1 "$ANCORA" ppl -m "$M" -f "$tmp/ppl.txt" --ctx 4096 -q   # too short for 2 x ctx
grep -q "needs at least" "$tmp/err" || fail "short text message"
expect 2 "$ANCORA" ppl -m "$M" -f "$tmp/ppl.txt" --mode sideways
expect 2 "$ANCORA" ppl -m "$M" -f "$tmp/ppl.txt" --plot        # plot is for stream mode
expect 2 "$ANCORA" ppl -m "$M" -f "$tmp/ppl.txt" --window 8 --sinks 8 --mode stream

# cache policies and rope options from the command line
expect 0 "$ANCORA" run -m "$M" --temp 0 -n 64 --cache sink --window 32 --sinks 4
[ -s "$tmp/out" ] || fail "sink run printed nothing"
expect 0 "$ANCORA" run -m "$M" --temp 0 -n 64 --cache recompute --window 16
expect 0 "$ANCORA" run -m "$M" --temp 0 -n 8 --rope-scaling yarn --rope-factor 4 --rope-orig-ctx 512
expect 2 "$ANCORA" run -m "$M" --rope-scaling cubic
expect 2 "$ANCORA" run -m "$M" --rope-factor 0
expect 1 "$ANCORA" run -m "$M" --temp 0 -n 100 --cache full --ctx 20
grep -q "context is full" "$tmp/err" || fail "full cache message"

# gguf random + bench on a small random model
expect 0 "$ANCORA" gguf random --shape small --type q4_0 -o "$tmp/small.gguf" --vocab "$V"
expect 0 "$ANCORA" gguf info "$tmp/small.gguf"
grep -q "blk.3.ffn_down.weight" "$tmp/out" || fail "random file tensors"
expect 0 "$ANCORA" bench -m "$tmp/small.gguf" -p 16 -n 4 -r 2 --json --no-bandwidth
for k in model type size_bytes threads backend pp tg pp_tok_s tg_tok_s; do
  grep -q "\"$k\":" "$tmp/out" || fail "bench --json lacks $k"
done
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["pp"]==16 and d["tg_tok_s"]>0' "$tmp/out" || fail "bench JSON does not parse"
fi
expect 2 "$ANCORA" gguf random --shape huge-9000b --type q4_0 -o "$tmp/x.gguf" --vocab "$V"
expect 2 "$ANCORA" bench -m "$tmp/small.gguf" -p 0 -n 0

# run --save: the exchange lands in the history database
expect 0 "$ANCORA" run -m "$M" -p "Once upon a time" -n 8 --temp 0 --save --db "$tmp/run.db" --title "saved run"
grep -q "saved as session 1" "$tmp/err" || fail "run --save did not report the session"
expect 0 "$ANCORA" history show 1 --db "$tmp/run.db"
grep -q "saved run" "$tmp/out" && grep -q "Once upon a time" "$tmp/out" || fail "saved run not in history"
expect 0 "$ANCORA" run -m "$M" -p "The big" -n 4 --save --session 1 --db "$tmp/run.db"
expect 1 "$ANCORA" run -m "$M" -p "x" -n 1 --save --session 77 --db "$tmp/run.db"
expect 2 "$ANCORA" run -m "$M" -p "x" -n 1 --title "no save"
printf 'not a database, keep me' >"$tmp/foreign.db"
expect 1 "$ANCORA" run -m "$M" -p "x" -n 1 --save --db "$tmp/foreign.db"
[ "$(cat "$tmp/foreign.db")" = "not a database, keep me" ] || fail "a foreign file was modified"

[ $fails -eq 0 ] && echo "all CLI checks passed"
exit $((fails > 0))
