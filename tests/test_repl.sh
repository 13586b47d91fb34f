#!/usr/bin/env bash
# test_repl.sh — the REPL in a pipe (`printf 'hi\n/quit\n' | ancora repl -m M`):
# replies on stdout only, command answers on stderr, every command of the
# contract accepted or refused with one line, the exchange stored in the
# history database with parameter events, a saved session resumed, and
# `ancora` falling back to the REPL when stdin is not a terminal.
set -u
ANCORA=${ANCORA:-./ancora}
MODELS=${ANC_MODELS_DIR:-../shared/models}
[ -d "$MODELS" ] || { echo "SKIP: no models folder $MODELS"; exit 77; }
M=$MODELS/stories260K.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CONFIG_HOME=$tmp/config XDG_STATE_HOME=$tmp/state XDG_DATA_HOME=$tmp/data
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
DB=$tmp/h.db

# two turns, greedy, with commands in between
printf 'Once upon a time\n/set window 64\n/set sinks 2\n/set temp 0\n/rope theta 20000\n/rope scale yarn 2 512\n/cache sink\n/title Pipe test\n/system Be brief.\nThe big dog\n/stats\n/quit\nnever sent\n' |
  "$ANCORA" repl -m "$M" --db "$DB" -n 24 --temp 0 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "repl exit $rc: $(cat "$tmp/err")"
[ "$(grep -c . "$tmp/out")" -ge 2 ] || fail "expected two replies on stdout: $(cat "$tmp/out")"
grep -q "window 2048 -> 64" "$tmp/err" || fail "window change not acknowledged: $(cat "$tmp/err")"
grep -q "RoPE: theta 20000" "$tmp/err" || fail "rope theta not acknowledged"
grep -q "cache sink" "$tmp/err" || fail "/stats line missing"
grep -q "never sent" "$tmp/out" "$tmp/err" && fail "input after /quit was read"
# a reply cut at -n 24 says so (the TUI's "max tokens reached"), on stderr only
grep -q "max tokens reached: 24" "$tmp/err" || fail "no note for a reply cut at max tokens: $(cat "$tmp/err")"
grep -q "max tokens reached" "$tmp/out" && fail "the max-tokens note went to stdout"

# bad commands: one line each, nothing on stdout, still exit 0
printf '/set window banana\n/set sinks 9999\n/rope scale cubic 2\n/cache lru\n/frobnicate\n/export pdf x\n/load 999\n/quit\n' |
  "$ANCORA" repl -m "$M" --db "$DB" >"$tmp/out2" 2>"$tmp/err2"
[ $? -eq 0 ] || fail "repl with bad commands did not exit 0"
[ -s "$tmp/out2" ] && fail "bad commands printed to stdout: $(cat "$tmp/out2")"
[ "$(wc -l <"$tmp/err2")" -ge 7 ] || fail "expected one line per bad command: $(cat "$tmp/err2")"
grep -q "unknown command /frobnicate" "$tmp/err2" || fail "unknown command message"
grep -q "less than the window" "$tmp/err2" || fail "sinks >= window message: $(cat "$tmp/err2")"
grep -q "unknown export format 'pdf' (md or json)" "$tmp/err2" || fail "unknown export format message: $(cat "$tmp/err2")"

# the history: session, title, messages, parameter events
"$ANCORA" history list --db "$DB" >"$tmp/list" || fail "history list"
grep -q "Pipe test" "$tmp/list" || fail "title not stored: $(cat "$tmp/list")"
id=$(awk 'NR==1{print $1}' "$tmp/list")
"$ANCORA" history show "$id" --db "$DB" >"$tmp/show" || fail "history show"
grep -q "Once upon a time" "$tmp/show" || fail "user message not stored"
grep -q "The big dog" "$tmp/show" || fail "second message not stored"
grep -q "window: 2048 -> 64" "$tmp/show" || fail "parameter event not stored: $(cat "$tmp/show")"
grep -q "(max tokens reached)" "$tmp/show" || fail "finish reason not stored"

# export from the REPL
printf '/load %s\n/export json %s\n/export md %s\n/quit\n' "$id" "$tmp/e.json" "$tmp/e.md" |
  "$ANCORA" repl -m "$M" --db "$DB" >/dev/null 2>"$tmp/err3"
[ -s "$tmp/e.json" ] || fail "json export missing: $(cat "$tmp/err3")"
grep -q "loaded session $id" "$tmp/err3" || fail "load message: $(cat "$tmp/err3")"
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/e.json" || fail "export is not JSON"
fi

# resume with --session: the conversation continues in the same session
printf 'And then\n/quit\n' | "$ANCORA" repl -m "$M" --db "$DB" --session "$id" -n 8 --temp 0 >"$tmp/out4" 2>"$tmp/err4"
[ $? -eq 0 ] || fail "resume failed: $(cat "$tmp/err4")"
"$ANCORA" history show "$id" --db "$DB" | grep -q "And then" || fail "resumed message not in the same session"
printf 'x\n' | "$ANCORA" repl -m "$M" --db "$DB" --session 4242 >/dev/null 2>"$tmp/err5"
[ $? -eq 1 ] || fail "resuming a missing session should exit 1"

# `ancora -m M` with a pipe on stdin is the REPL; --no-history stores nothing
printf 'Hello\n' | "$ANCORA" -m "$M" --no-history -n 4 >"$tmp/out6" 2>/dev/null
[ $? -eq 0 ] && [ -s "$tmp/out6" ] || fail "ancora without a terminal should run the REPL"
[ -e "$tmp/data/ancora/history.db" ] && fail "--no-history created a database"

# config file: model and window from ~/.config/ancora/config
mkdir -p "$tmp/config/ancora"
printf '# test\nmodel = %s\nwindow = 48\nbogus-key = 1\n' "$M" >"$tmp/config/ancora/config"
printf '/stats\nhi\n/stats\n/quit\n' | "$ANCORA" repl --no-history -n 2 >/dev/null 2>"$tmp/err7"
grep -q "unknown setting 'bogus-key'" "$tmp/err7" || fail "unknown config key not reported"
grep -q "/48 entries" "$tmp/err7" || fail "config window not applied: $(cat "$tmp/err7")"
rm "$tmp/config/ancora/config"
env -u ANCORA_MODEL "$ANCORA" repl </dev/null >/dev/null 2>"$tmp/err8"
[ $? -eq 2 ] || fail "no model: want exit 2"
grep -q "the default model is not installed" "$tmp/err8" && grep -q "scripts/fetch-models" "$tmp/err8" \
  || fail "first-run help missing: $(cat "$tmp/err8")"

[ $fails -eq 0 ] && echo "all REPL checks passed"
exit $((fails > 0))
