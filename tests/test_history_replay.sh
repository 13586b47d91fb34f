#!/usr/bin/env bash
# test_history_replay.sh — `ancora history replay` on a conversation made by
# the real REPL with stories260K: the replayed turns have the lengths the
# chat fed (its stored prompt_tokens); each reply's mean NLL equals what
# `ancora ppl --mode stream --ids` gives on the same token sequence with
# the same settings, restricted to that reply's tokens; the same settings
# give the same numbers; a tiny window with sinks changes them; refusals
# (unknown id, model gone, other vocabulary, no replies) are one line, exit 1.
# Also: the figures stored with each reply and the title from the first
# user message. Needs ../shared/models (skips without it) and python3; with
# $ANC_REAL_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf (make check sets it) it
# also replays a SmolLM2 chat whose replies end with their <|im_end|>.
set -u
ANCORA=${ANCORA:-./ancora}
MODELS=${ANC_MODELS_DIR:-../shared/models}
M=$MODELS/stories260K.gguf
PY=/usr/bin/python3
[ -f "$M" ] || { echo "SKIP: no $M"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: no $PY"; exit 77; }
[ -x "$ANCORA" ] || { echo "FAIL: $ANCORA is not built"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
db=$tmp/h.db
H() { "$ANCORA" history "$@" --db "$db"; }
# expect STATUS CMD...: run, check the exit status; a failure says one "ancora: " line
expect() {
  local want=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local got=$?
  [ "$got" -eq "$want" ] || fail "exit $got (want $want): $* -- $(head -c 300 "$tmp/err")"
  if [ "$want" -ne 0 ]; then
    [ "$(grep -c '^ancora: ' "$tmp/err")" -eq 1 ] || fail "not one 'ancora: ' line for: $* -- $(cat "$tmp/err")"
  fi
}

# ---- a conversation: system prompt, four turns, a mid-chat /system and /set
printf '%s\n' "  Tell me a story about a cat who lives by the sea and loves the rain, please  " \
  'And then what happened to the dog?' '/set window 96' '/system Be short.' 'Why was the dog sad?' \
  'Tell me more.' '/quit' |
  "$ANCORA" repl -m "$M" --db "$db" --seed 7 -n 60 --template chatml --system "You are kind." \
    >"$tmp/chat" 2>"$tmp/chat_err" || fail "repl: $(cat "$tmp/chat_err")"

# the title: the first user message, one line, trimmed, shortened with an ellipsis
expect 0 H list
grep -q "stories260K  Tell me a story about a cat who lives by the…$" "$tmp/out" \
  || fail "list: model name / title: $(cat "$tmp/out")"

# the figures stored with each reply, in show and both exports
expect 0 H show 1
[ "$(grep -c '^\[sink window [0-9]* sinks 4, RoPE none base 10000 x1, template chatml, prompt [0-9.]* tok/s, decode [0-9.]* tok/s, cache [0-9]*/[0-9]*, sink attention [0-9.]*%\]$' "$tmp/out")" -eq 4 ] \
  || fail "show: four replies with figures: $(cat "$tmp/out")"
grep -q '^\[sink window 96 sinks 4' "$tmp/out" || fail "show: the window in force after /set"
grep -q '^  \* window: 2048 -> 96$' "$tmp/out" || fail "show: the /set event inline"
expect 0 H export 1 --format md
[ "$(grep -c '^> Engine: `sink window' "$tmp/out")" -eq 4 ] || fail "markdown export: figures"
expect 0 H show 1 --json
cp "$tmp/out" "$tmp/show.json"
"$PY" - "$tmp/show.json" <<'EOF' || fail "show --json: engine figures"
import json, sys
d = json.load(open(sys.argv[1]))
replies = [m for m in d["messages"] if m["role"] == "assistant"]
assert len(replies) == 4, len(replies)
assert d["session"]["vocab_hash"].startswith("v1:512:"), d["session"]["vocab_hash"]
for m in replies:
    e = m["engine"]
    assert e["cache"] == "sink" and e["sinks"] == 4 and e["template"] == "chatml", e
    assert e["tokens"] == m["completion_tokens"] and e["adapter"] is None, e
    # the ids as fed: the generated tokens, plus the stop token when it stopped
    assert e["n_token_ids"] == m["completion_tokens"] + (m["finish_reason"] == "stop"), (e, m)
    assert 0 <= e["sink_share"] <= 1 and e["cache_used"] <= e["cache_capacity"], e
assert [m["role"] for m in d["messages"]].count("system") == 2
assert all(m["engine"] is None for m in d["messages"] if m["role"] != "assistant")
EOF

# ---- replay == ppl --mode stream over the same tokens, restricted to the replies
check_against_ppl() { # NAME SETTINGS... (env: model MDL, database DBF, SHOW the show --json file)
  local name=$1; shift
  "$ANCORA" history replay 1 --db "$DBF" --json --ids-out "$tmp/$name.ids" "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" \
    || { fail "replay $name: $(cat "$tmp/$name.err")"; return; }
  "$ANCORA" ppl -m "$MDL" --ids "$tmp/$name.ids" --mode stream --csv "$tmp/$name.csv" "$@" \
    >"$tmp/$name.ppl" 2>"$tmp/$name.ppl_err" || { fail "ppl $name: $(cat "$tmp/$name.ppl_err")"; return; }
  "$PY" - "$tmp/$name.json" "$tmp/$name.csv" "$SHOW" <<'EOF' || fail "replay $name differs from ppl --mode stream"
import csv, json, math, sys
r = json.load(open(sys.argv[1]))
nll = {int(row["position"]): float(row["nll"]) for row in csv.DictReader(open(sys.argv[2]))}
shown = json.load(open(sys.argv[3]))
stored = [m for m in shown["messages"] if m["role"] == "assistant"]
assert len(r["replies"]) == len(stored) > 0
total, count = 0.0, 0
for rep, m in zip(r["replies"], stored):
    # the turn fed before the reply is as long as the chat's own
    assert rep["message_id"] == m["id"] and rep["prompt_tokens"] == m["prompt_tokens"], (rep, m)
    pos = range(rep["first"], rep["first"] + rep["tokens"])
    mean = sum(nll[p] for p in pos) / len(pos)
    assert abs(mean - rep["mean_nll"]) < 2e-6, (rep, mean)
    assert abs(math.exp(mean) - rep["ppl"]) < 1e-4 * rep["ppl"], (rep, mean)
    total += sum(nll[p] for p in pos)
    count += len(pos)
assert count == r["tokens"] and abs(math.exp(total / count) - r["ppl"]) < 1e-4 * r["ppl"], r
print("%s: PPL %.4f over %d reply tokens of %d" % (sys.argv[1].rsplit("/", 1)[-1], r["ppl"], count, r["sequence_tokens"]))
EOF
}
MDL=$M DBF=$db SHOW=$tmp/show.json
check_against_ppl full --cache full
check_against_ppl small --cache sink --window 24 --sinks 4
check_against_ppl window --cache window --window 24
"$PY" - "$tmp/full.json" "$tmp/small.json" "$tmp/window.json" <<'EOF' || fail "settings that change what the replies see must change the numbers"
import json, sys
full, small, window = (json.load(open(p)) for p in sys.argv[1:])
assert full["sequence_tokens"] > 200, full["sequence_tokens"]  # longer than the window
assert abs(full["ppl"] - small["ppl"]) > 0.01 and abs(small["ppl"] - window["ppl"]) > 0.01, \
    (full["ppl"], small["ppl"], window["ppl"])
assert small["settings"]["window"] == 24 and small["settings"]["sinks"] == 4
EOF

# the same settings give the same numbers; the text form ends with PPL = x
expect 0 H replay 1 --cache sink --window 24 --sinks 4
cp "$tmp/out" "$tmp/text1"
expect 0 H replay 1 --cache sink --window 24 --sinks 4
cmp -s "$tmp/out" "$tmp/text1" || fail "same settings, different numbers"
[ "$(wc -l <"$tmp/out")" -eq 6 ] || fail "text: header, 4 replies, PPL: $(cat "$tmp/out")"
want=$("$PY" -c 'import json,sys; print("PPL = %.4f" % json.load(open(sys.argv[1]))["ppl"])' "$tmp/small.json")
[ "$(tail -n 1 "$tmp/out")" = "$want" ] || fail "text PPL line '$(tail -n 1 "$tmp/out")' != '$want'"

# another file with the same vocabulary: -m; same numbers
cp "$M" "$tmp/copy.gguf"
expect 0 H replay 1 -m "$tmp/copy.gguf" --cache sink --window 24 --sinks 4
cmp -s "$tmp/out" "$tmp/text1" || fail "-m with the same model gave other numbers"

# ---- refusals: one line, exit 1 (usage errors: 2)
expect 1 H replay 99;                      grep -q "no session 99" "$tmp/err" || fail "unknown id: $(cat "$tmp/err")"
expect 2 H replay;                         grep -q "needs a session ID" "$tmp/err" || fail "no id"
expect 2 H replay 1 --window 0x;           grep -q "invalid value for --window" "$tmp/err" || fail "bad --window: $(cat "$tmp/err")"
expect 0 H replay --help;                  grep -q "^Usage: ancora history replay" "$tmp/out" || fail "replay --help"
expect 1 H replay 1 -m "$tmp/nothing.gguf"; grep -q "cannot be read" "$tmp/err" || fail "-m missing: $(cat "$tmp/err")"
# the session's own model file gone
"$PY" - "$db" "$tmp/gone.gguf" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE sessions SET model_path = ? WHERE id = 1", (sys.argv[2],)); c.commit()
EOF
expect 1 H replay 1;                       grep -q "of the session is gone" "$tmp/err" || fail "model gone: $(cat "$tmp/err")"
# another vocabulary (the fingerprint stored with the session differs)
"$PY" - "$db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE sessions SET vocab_hash = 'v1:32000:0000000000000000' WHERE id = 1"); c.commit()
EOF
expect 1 H replay 1 -m "$M";               grep -q "vocabulary of .* differs from session 1's" "$tmp/err" || fail "vocab: $(cat "$tmp/err")"
# a session with no replies
printf '/title empty\n/quit\n' | "$ANCORA" repl -m "$M" --db "$db" >/dev/null 2>&1
expect 1 H replay 2;                       grep -q "session 2 has no replies" "$tmp/err" || fail "no replies: $(cat "$tmp/err")"

# ---- a real chat template (SmolLM2's own, run by the Jinja interpreter):
# replies that end with <|im_end|>, which the chat feeds and replay scores
S=${ANC_REAL_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/ancora/models}/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$S" ]; then
  printf 'Hi! Who are you?\nThanks. Say goodbye.\n' |
    "$ANCORA" repl -m "$S" --db "$tmp/s.db" --seed 1 -n 120 >/dev/null 2>"$tmp/s_err" || fail "SmolLM2 repl: $(cat "$tmp/s_err")"
  "$ANCORA" history show 1 --json --db "$tmp/s.db" >"$tmp/s_show.json" || fail "SmolLM2 show"
  "$PY" - "$tmp/s_show.json" <<'EOF' || fail "SmolLM2: a reply that stopped stores its end-of-turn token"
import json, sys
d = json.load(open(sys.argv[1]))
replies = [m for m in d["messages"] if m["role"] == "assistant"]
assert len(replies) == 2 and any(m["finish_reason"] == "stop" for m in replies), replies
for m in replies:
    assert m["engine"]["template"] == "file", m["engine"]
    assert m["engine"]["n_token_ids"] == m["completion_tokens"] + (m["finish_reason"] == "stop"), m
EOF
  MDL=$S DBF=$tmp/s.db SHOW=$tmp/s_show.json
  check_against_ppl smol_full --cache full
  check_against_ppl smol_small --cache sink --window 32 --sinks 4
else
  echo "note: no $S: the SmolLM2 part is skipped"
fi

[ $fails -eq 0 ] && echo "history replay: all checks passed"
[ $fails -eq 0 ]
