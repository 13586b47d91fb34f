#!/bin/bash
# test_remote.sh — Ancora as the front-end of a real llama-server (the
# remote engine, docs/remote.md), started here on 127.0.0.1 with
# SmolLM2-135M-Instruct:
#  1. `run --remote` streams a reply to stdout (exit 0), --save stores it
#     with the server and model on the session and the server's token
#     counts on the reply;
#  2. the REPL: replies, /models, /stats, settings the server cannot take
#     (one line each, nothing changed), /set sinks as llama-server's n_keep;
#     history rows for every message with prompt and completion tokens;
#  3. the TUI in tmux: a reply streams (seen part-way, then whole), the KV
#     panel follows /slots (after each reply its "used N/CTX" equals the
#     slot's prompt + decoded tokens, and grows with the conversation),
#     Ctrl-C cancels (the reply is kept, marked cancelled, and the server's
#     slot stops: the stream was closed);
#  3b. timeouts: llama-server stopped (SIGSTOP) mid-reply, and a listener
#     that never answers: `run --timeout S` gives up in one line, exit 1;
#     an https listener with a self-signed certificate: a TLS error, one line;
#  4. the server killed (kill -9) mid-reply: the TUI stays up, says so in one
#     line, keeps the partial reply marked "error" in the history; the next
#     message gets "cannot connect" (refused) and the TUI is still up;
#     `run` against the dead port exits 1 with one line;
#  5. a server with --api-key: a wrong key is refused (401) in one line
#     that does not contain the key, exit 1; the right one from
#     $ANCORA_API_KEY works; the key is nowhere in the history database.
# Every request goes to 127.0.0.1; every wait is bounded.
# Needs: SmolLM2 ($ANC_REAL_MODELS, scripts/fetch-models), llama-server
# (scripts/build-llama-server builds it once into a cache; if it cannot be
# built the test skips, 77), tmux 3, curl, python3 (a free port).
# Env: ANCORA, ANC_REAL_MODELS, ANC_SRCDIR. About 1-2 minutes on 2 cores.

set -u
ANCORA=${ANCORA:-./ancora}
ANC_REAL_MODELS=${ANC_REAL_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/ancora/models}
ANC_SRCDIR=${ANC_SRCDIR:-.}
SMOL=$ANC_REAL_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
WAIT=${ANC_REPLY_WAIT:-90} # seconds a reply may take on a slow machine

. "$ANC_SRCDIR/tests/tui_lib.sh"   # tui_require, check_geometry
tui_require
[ -f "$SMOL" ] || { echo "SKIP: no $SMOL (scripts/fetch-models smollm2)"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is not installed"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is not installed"; exit 77; }
case $ANCORA in /*) ;; *) ANCORA=$PWD/$ANCORA ;; esac
[ -x "$ANCORA" ] || { echo "FAIL: no program $ANCORA"; exit 1; }
if ! LS=$("$ANC_SRCDIR/scripts/build-llama-server" --print-path --quiet 2>"${TMPDIR:-/tmp}/anc-ls-build.$$"); then
    echo "SKIP: llama-server could not be built: $(tail -n 1 "${TMPDIR:-/tmp}/anc-ls-build.$$")"
    rm -f "${TMPDIR:-/tmp}/anc-ls-build.$$"
    exit 77
fi
rm -f "${TMPDIR:-/tmp}/anc-ls-build.$$"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ancora-remote.XXXXXX") || exit 1
sock=$tmp/tmux.sock
T() { tmux -u -S "$sock" -f /dev/null "$@"; }
srv_pid=
stop_server() {
    [ -n "$srv_pid" ] || return 0
    kill "$srv_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$srv_pid" 2>/dev/null
    wait "$srv_pid" 2>/dev/null
    srv_pid=
}
cleanup() { T kill-server >/dev/null 2>&1; stop_server; rm -rf "$tmp"; }
trap cleanup EXIT
# a clean environment: no user config, no inherited remote or key
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config XDG_DATA_HOME=$tmp/home/.local/share
mkdir -p "$HOME"
unset ANCORA_REMOTE ANCORA_API_KEY ANCORA_MODEL ANCORA_DB

failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server [llama-server options...]: on a free port, ready (GET /health
# says ok) within 120 s, else the test fails
start_server() {
    port=$(free_port)
    URL=http://127.0.0.1:$port
    "$LS" -m "$SMOL" --host 127.0.0.1 --port "$port" -c 2048 -np 1 -t 2 --metrics \
        "$@" >"$tmp/server.$port.log" 2>&1 &
    srv_pid=$!
    local end=$((SECONDS + 120))
    while [ $SECONDS -lt $end ]; do
        curl -s --max-time 2 "$URL/health" 2>/dev/null | grep -q '"ok"' && return 0
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.3
    done
    echo "FAIL llama-server did not start on $URL"; tail -n 20 "$tmp/server.$port.log"
    exit 1
}

# the slot's tokens as /slots reports them: prompt + decoded
slot_tokens() {
    curl -s --max-time 5 "$URL/slots" | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
nt = s.get("next_token")
nt = nt[0] if isinstance(nt, list) and nt else (nt or {})
print(s.get("n_prompt_tokens", 0) + nt.get("n_decoded", 0), 1 if s.get("is_processing") else 0)'
}

q() { sqlite3 "$1" "$2" 2>/dev/null; }
have_sqlite=0
command -v sqlite3 >/dev/null 2>&1 && have_sqlite=1

start_server

# ---- 1. run --remote ------------------------------------------------------------------
db1=$tmp/run.db
out=$("$ANCORA" run --remote "$URL" -p "Name three colours." -n 24 --temp 0 --save --db "$db1" 2>"$tmp/run.err")
rc=$?
if [ $rc -eq 0 ] && [ -n "$out" ]; then pass "run --remote: a reply on stdout ($(printf '%s' "$out" | head -c 60 | tr '\n' ' ')...)"
else fail "run --remote: rc $rc, stdout '$out'"; cat "$tmp/run.err"; fi
grep -q "llama-server: prompt [1-9][0-9]* tokens" "$tmp/run.err" && pass "run --remote: the server's counts on stderr" \
    || { fail "run --remote: no counts on stderr"; cat "$tmp/run.err"; }
"$ANCORA" history show 1 --db "$db1" >"$tmp/show1" 2>&1
grep -q "(http://127.0.0.1:$port)" "$tmp/show1" && grep -q '"engine": "llama-server"' "$tmp/show1" \
    && pass "run --save: the session names the server and its engine" \
    || { fail "run --save: server not recorded"; cat "$tmp/show1"; }
grep -qE "assistant #2 .* [1-9][0-9]* tokens" "$tmp/show1" && pass "run --save: the reply with its token count" \
    || { fail "run --save: no reply row with tokens"; cat "$tmp/show1"; }
"$ANCORA" history replay 1 --db "$db1" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "answered by a remote server.*pass -m MODEL" "$tmp/err" \
    && pass "history replay of a remote session: needs a local file, one line" || { fail "replay of a remote session"; cat "$tmp/err"; }
"$ANCORA" run --remote "$URL" -m no-such-model -p hi >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "has no model 'no-such-model'" "$tmp/err" \
    && pass "run --remote -m unknown: exit 1, one line" || { fail "unknown model: rc $rc"; cat "$tmp/err"; }
"$ANCORA" run --remote "$URL" --prompt-ids "1 2" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && pass "run --remote --prompt-ids: a usage error" || fail "--prompt-ids with --remote accepted"

# ---- 2. the REPL ------------------------------------------------------------------------
db2=$tmp/repl.db
printf '%s\n' "Hi! Who are you?" "/models" "/stats" "/set window 64" "/cache window" "/rope theta 20000" \
    "/set sinks 4" "/set temp 0" "What is two plus two?" |
    ANCORA_REMOTE=$URL timeout $((WAIT * 2)) "$ANCORA" repl --db "$db2" -n 32 --seed 5 >"$tmp/repl.out" 2>"$tmp/repl.err"
rc=$?
[ $rc -eq 0 ] && pass "REPL via \$ANCORA_REMOTE: exit 0" || { fail "REPL: rc $rc"; cat "$tmp/repl.err"; }
[ "$(grep -c . "$tmp/repl.out")" -ge 2 ] && pass "REPL: two replies on stdout" || { fail "REPL: replies missing"; cat "$tmp/repl.out"; }
# (command answers go to stderr when the REPL reads a pipe)
grep -q "^\* .*SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/repl.err" && pass "/models: the server's model, marked in use" \
    || { fail "/models"; cat "$tmp/repl.err"; }
grep -q "llama-server at $URL.*slot 0 of 1: [0-9]*/2048 tokens" "$tmp/repl.err" && pass "/stats: the slot from /slots" \
    || { fail "/stats"; cat "$tmp/repl.err"; }
for pat in "the window cannot be changed from here; nothing changed" \
           "the cache policy cannot be changed from here; nothing changed" \
           "/rope cannot change it from here; nothing changed" \
           "sinks .* -> 4: sent as llama-server's n_keep"; do
    grep -qE "$pat" "$tmp/repl.err" && pass "one line: $pat" || { fail "no line '$pat'"; cat "$tmp/repl.err"; }
done
if [ $have_sqlite -eq 1 ]; then
    n=$(q "$db2" "select count(*) from messages where role='assistant' and finish_reason in ('stop','length') and prompt_tokens > 0 and completion_tokens > 0 and prompt_ms >= 0 and gen_ms >= 0")
    [ "$n" = 2 ] && pass "history: both replies with the server's counts and timings" || fail "history rows: $n"
    n=$(q "$db2" "select count(*) from messages where role='user'")
    [ "$n" = 2 ] && pass "history: both user messages" || fail "history user rows: $n"
    q "$db2" "select model_path, model_name from sessions" | grep -q "^http://127.0.0.1:$port|.*SmolLM2" \
        && pass "history: the session's model is the server and its model id" || fail "session model: $(q "$db2" 'select model_path from sessions')"
    n=$(q "$db2" "select count(*) from param_events where name='sinks' and new_value='4'")
    [ "$n" = 1 ] && pass "history: /set sinks recorded; refused settings not" || fail "param events: $n"
fi

# ---- 3. the TUI --------------------------------------------------------------------------
cap() { T capture-pane -p -t tui 2>/dev/null; }
show() { cap | sed 's/^/    | /'; }
send() { T send-keys -t tui -l -- "$1"; }
key() { T send-keys -t tui "$@"; }
wait_for() { # PATTERN SECONDS
    local end=$((SECONDS + $2))
    while :; do
        cap | grep -qE -- "$1" && return 0
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}
idle() { cap | head -1 | grep -q '● idle'; }
wait_idle() { # SECONDS
    local end=$((SECONDS + $1))
    while ! idle; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done
}
# the KV panel's "used N/2048"
panel_used() { cap | grep -o 'used [0-9]*/2048' | head -1 | sed 's/used \([0-9]*\)\/.*/\1/'; }

db3=$tmp/tui.db
T new-session -d -s tui -x 160 -y 45 \
    "cd '$tmp' && '$ANCORA' chat --remote '$URL' --db '$db3' --temp 0 --seed 3 -n 200; echo EXITED \$?; sleep 30"
wait_for "KV cache.*llama-server" 20 && pass "TUI: up, the KV panel names the server" || { fail "TUI did not start"; show; }
wait_for "remote llama-server" 5 && pass "TUI: the status bar says remote llama-server" || fail "status bar"
send "Tell me a long story about the sea and the ships on it."
key Enter
# streaming: part of the reply shows while the bar still says generating
if wait_for "▎ .*#2" "$WAIT" && wait_for '▶ generating' 10; then
    part=$(cap | grep -A1 "▎ .*#2" | tail -1)
    pass "TUI: the reply streams (part-way: $(printf '%s' "$part" | cut -c1-60 | sed 's/  *$//'))"
else fail "TUI: no streaming reply"; show; fi
wait_idle "$WAIT" || { fail "TUI: the reply did not end"; show; }
# the KV panel follows /slots: after the last poll both say the same
ok=0
for _ in $(seq 30); do
    read -r want busy < <(slot_tokens)
    got=$(panel_used)
    if [ -n "$got" ] && [ "$got" = "$want" ] && [ "$got" -gt 0 ]; then ok=1; break; fi
    sleep 0.3
done
[ $ok -eq 1 ] && pass "TUI: KV panel used $got/2048 = /slots' prompt + decoded tokens" \
    || { fail "KV panel '$(panel_used)' vs /slots '$want'"; show; }
before=$got
# the remote panels fit narrower terminals too (with the panels, then folded)
for size in "120 36" "100 30" "80 24"; do
    T resize-window -t tui -x "${size% *}" -y "${size#* }"
    sleep 0.5
    check_geometry "TUI at ${size% *}x${size#* }" "${size% *}"
done
T resize-window -t tui -x 160 -y 45
wait_for "KV cache.*llama-server" 5 || { fail "TUI: the panels did not come back at 160x45"; show; }
# cancel: Ctrl-C mid-reply keeps the text, marks it, and the server stops
send "Now tell me another long story, about mountains."
key Enter
wait_for "▎ .*#4" "$WAIT" || { fail "TUI: second reply did not start"; show; }
sleep 1
key C-c
if wait_for "#4 · ([0-9]+ tok · )?cancelled" 10; then pass "TUI: Ctrl-C cancels, the reply is kept marked cancelled"
else fail "TUI: no cancelled mark"; show; fi
ok=0
for _ in $(seq 25); do
    read -r now busy < <(slot_tokens)
    [ "$busy" = 0 ] && { ok=1; break; }
    sleep 0.2
done
[ $ok -eq 1 ] && pass "TUI: the server's slot stopped (the stream was closed)" || fail "slot still processing after cancel"
wait_idle 10 || { fail "TUI: not idle after the cancel"; show; }
# the next reply: the panel follows the slot as the conversation grows
send "Thank you."
key Enter
wait_for "▎ .*#6" "$WAIT" || { fail "TUI: the reply after the cancel did not start"; show; }
wait_idle "$WAIT" || { fail "TUI: the reply after the cancel did not end"; show; }
ok=0
for _ in $(seq 30); do
    got=$(panel_used); read -r want busy < <(slot_tokens)
    [ -n "$got" ] && [ "$got" = "$want" ] && [ "$got" -gt "$before" ] && { ok=1; break; }
    sleep 0.3
done
[ $ok -eq 1 ] && pass "TUI: KV panel follows the slot as it grows ($before -> $got)" || { fail "KV panel did not follow: '$got' vs '$want'"; show; }

# ---- 3b. timeouts: a server that stops answering -----------------------------------------
# mid-reply: the server stopped (SIGSTOP) while `run` streams; --timeout 3
"$ANCORA" run --remote "$URL" -p "Write a long story about a lighthouse keeper." -n 400 --temp 0 \
    --timeout 3 >"$tmp/stall.out" 2>"$tmp/stall.err" &
run_pid=$!
for _ in $(seq 300); do [ -s "$tmp/stall.out" ] && break; kill -0 $run_pid 2>/dev/null || break; sleep 0.1; done
kill -STOP "$srv_pid"
for _ in $(seq 200); do kill -0 $run_pid 2>/dev/null || break; sleep 0.1; done
kill -0 $run_pid 2>/dev/null && { fail "run did not give up on a stopped server"; kill $run_pid; }
wait $run_pid
rc=$?
kill -CONT "$srv_pid"
if [ $rc -eq 1 ] && [ -s "$tmp/stall.out" ] && grep -q "did not answer within 3 s" "$tmp/stall.err"; then
    pass "run: a server that stops mid-reply, --timeout 3: exit 1, the text so far on stdout"
else fail "stalled server: rc $rc"; cat "$tmp/stall.err"; fi
# connecting: a listener that accepts and never answers
silent=$(free_port)
python3 - "$silent" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
s.settimeout(1)
held, end = [], time.time() + 20
while time.time() < end:
    try:
        held.append(s.accept()[0])
    except socket.timeout:
        pass
PY
silent_pid=$!
sleep 0.5
t0=$SECONDS
"$ANCORA" run --remote "http://127.0.0.1:$silent" --timeout 2 --connect-timeout 1 -p hi >/dev/null 2>"$tmp/err"
rc=$?
kill $silent_pid 2>/dev/null; wait $silent_pid 2>/dev/null
if [ $rc -eq 1 ] && grep -q "did not answer within 2 s" "$tmp/err" && [ $((SECONDS - t0)) -le 10 ]; then
    pass "a server that never answers: one line after the timeout, exit 1"
else fail "silent server: rc $rc after $((SECONDS - t0)) s"; cat "$tmp/err"; fi

# TLS: an https listener on 127.0.0.1 with a self-signed certificate is refused
if command -v openssl >/dev/null 2>&1 &&
   openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/tls.key" -out "$tmp/tls.crt" -days 1 \
       -subj /CN=127.0.0.1 >/dev/null 2>&1; then
    tls=$(free_port)
    python3 - "$tls" "$tmp/tls.crt" "$tmp/tls.key" <<'PY' &
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
s.settimeout(1)
end = time.time() + 20
while time.time() < end:
    try:
        c = s.accept()[0]
    except socket.timeout:
        continue
    try:
        ctx.wrap_socket(c, server_side=True).close()
    except (ssl.SSLError, OSError):
        pass
PY
    tls_pid=$!
    sleep 0.5
    "$ANCORA" run --remote "https://127.0.0.1:$tls" --connect-timeout 5 -p hi >/dev/null 2>"$tmp/err"
    rc=$?
    kill $tls_pid 2>/dev/null; wait $tls_pid 2>/dev/null
    [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "TLS failed with https://127.0.0.1:$tls" "$tmp/err" \
        && pass "TLS: a self-signed certificate refused in one line, exit 1" || { fail "TLS: rc $rc"; cat "$tmp/err"; }
else
    echo "skip TLS check: no openssl"
fi

# ---- 4. the server killed mid-reply -------------------------------------------------------
# kill it while a reply streams (a reply that ends first: ask again, at most 3 times)
n=7 killed=0
for prompt in "Write a very long poem about the wind." "Count from 1 to 300, one number per line." \
              "List one hundred animals, one per line."; do
    send "$prompt"
    key Enter
    wait_for "▎ .*#$((n + 1))" "$WAIT" || { fail "TUI: reply #$((n + 1)) did not start"; show; break; }
    if cap | head -1 | grep -q '▶ generating'; then
        kill -9 "$srv_pid"; wait "$srv_pid" 2>/dev/null; srv_pid=
        killed=1
        break
    fi
    wait_idle "$WAIT"
    n=$((n + 2))
done
[ $killed -eq 1 ] || fail "TUI: no reply was still streaming to kill the server under"
cut_row=$(( (n + 1) / 2 - 1 )) # the cut-off reply's place among the replies
if wait_for "the reply was cut off \(the text so far is kept\)|closed the stream before the reply ended" 30; then
    pass "TUI: the lost server in one line"
else fail "TUI: no line about the lost server"; show; fi
wait_idle 10 && cap | grep -q "KV cache" && pass "TUI: still up after the server died" || { fail "TUI not idle/up"; show; }
send "Are you still there?"
key Enter
if wait_for "cannot connect to http://127.0.0.1:$port" 20; then
    pass "TUI: a refused connection in one line"
else fail "TUI: no refused line"; show; fi
wait_idle 10 && cap | grep -q "KV cache" && pass "TUI: still up after the refused connection" || fail "TUI gone"
key C-d
wait_for "EXITED 0" 10 && pass "TUI: Ctrl-D leaves, exit 0" || { fail "TUI exit"; show; }
if [ $have_sqlite -eq 1 ]; then
    row=$(q "$db3" "select finish_reason, length(content) > 0 from messages where role='assistant' order by id limit 1 offset 1")
    [ "$row" = "cancelled|1" ] && pass "history: the cancelled reply kept, marked cancelled" || fail "cancelled row: '$row'"
    row=$(q "$db3" "select finish_reason, length(content) > 0 from messages where role='assistant' order by id limit 1 offset $cut_row")
    [ "$row" = "error|1" ] && pass "history: the cut-off reply kept, marked error" || fail "cut-off row: '$row'"
fi
"$ANCORA" run --remote "$URL" -p hi >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "cannot connect" "$tmp/err" \
    && pass "run: a refused connection, exit 1, one line" || { fail "run refused: rc $rc"; cat "$tmp/err"; }
echo hi | "$ANCORA" repl --remote "$URL" --no-history >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "cannot connect" "$tmp/err" && pass "repl: a refused connection, exit 1" || { fail "repl refused: rc $rc"; cat "$tmp/err"; }

# ---- 5. API keys ----------------------------------------------------------------------------
KEY=anc-test-key-5f2c91
start_server --api-key "$KEY"
"$ANCORA" run --remote "$URL" --api-key wrong-key-77d1 -p hi >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "answered 401" "$tmp/err" \
   && ! grep -q "wrong-key-77d1" "$tmp/err"; then
    pass "a wrong key: 401 in one line, exit 1, the key not echoed ($(cut -c1-90 "$tmp/err"))"
else fail "wrong key: rc $rc"; cat "$tmp/err"; fi
"$ANCORA" run --remote "$URL" -p hi >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "answered 401" "$tmp/err" && pass "no key: 401" || { fail "no key"; cat "$tmp/err"; }
db5=$tmp/key.db
out=$(ANCORA_API_KEY=$KEY "$ANCORA" run --remote "$URL" -p "Say yes." -n 8 --temp 0 --save --db "$db5" 2>"$tmp/err")
[ $? -eq 0 ] && [ -n "$out" ] && pass "the right key from \$ANCORA_API_KEY: a reply" || { fail "right key"; cat "$tmp/err"; }
printf '%s\n' "Hello" "/stats" | ANCORA_API_KEY=$KEY "$ANCORA" repl --remote "$URL" --db "$db5" -n 8 >"$tmp/out" 2>"$tmp/err"
[ $? -eq 0 ] && grep -q "slot 0 of 1" "$tmp/err" && pass "the REPL with the key: /slots readable" || { fail "repl with key"; cat "$tmp/out" "$tmp/err"; }
if grep -rqa -- "$KEY" "$db5"* "$tmp/err" "$tmp/out" 2>/dev/null; then fail "the key was written somewhere"
else pass "the key is not in the history database or the output"; fi
stop_server

echo "$failures failure(s)"
[ $failures -eq 0 ]
