#!/bin/bash
# test_real_tui.sh — the full-screen interface and the REPL on the real
# models that scripts/fetch-models installs, driven through tmux:
#  1. a fresh, empty $HOME with only SmolLM2-135M-Instruct where
#     fetch-models puts it: `ancora` with no -m picks it and says so, the
#     status bar names it, "Hi! Who are you?" gets an English reply that ends
#     by itself, the panels show what they know of the model (RoPE base
#     100,000, 30 layers in the Sink tokens panel), /quit exits 0 and the
#     history database holds the session, the model's name and both messages;
#  2. Gemma 3 270M (15 sliding-window layers, 3 global) at 200x50: the reply
#     stops at the base-model default of 256 tokens or at EOS, the panels
#     split local and global layers, `/set window 64` says it acts on the
#     global layers only; then at 80x24 with the panels folded: the chat
#     works and nothing overflows, with the panels unfolded (F2) too, and
#     their narrower lines keep every number and label whole;
#  3. the REPL through a pipe in the same $HOME: an English reply on stdout.
# Needs: tmux 3, a C.UTF-8 locale, $ANC_REAL_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
# and gemma-3-270m-q4_k_m.gguf (scripts/fetch-models smollm2 gemma3);
# otherwise skipped (77). sqlite3 optional (else `ancora history show`).
# Env: ANCORA (the program), ANC_REAL_MODELS, ANC_SRCDIR.
# About 30-60 s on 2 cores.

set -u
ANCORA=${ANCORA:-./ancora}
ANC_REAL_MODELS=${ANC_REAL_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/ancora/models}
ANC_SRCDIR=${ANC_SRCDIR:-.}
SMOL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL=$ANC_REAL_MODELS/$SMOL_FILE
GEMMA=$ANC_REAL_MODELS/gemma-3-270m-q4_k_m.gguf
SMOL_NAME="Smollm2 135M 8k Lc100K Mix1 Ep2" # the file's general.name
GEMMA_NAME="Gemma 3 270m"
REPLY_WAIT=${ANC_REPLY_WAIT:-90} # seconds a reply may take on a slow machine

. "$ANC_SRCDIR/tests/tui_lib.sh"   # check_geometry, tui_require
tui_require
for f in "$SMOL" "$GEMMA"; do
    [ -f "$f" ] || { echo "SKIP: no real model $f (scripts/fetch-models smollm2 gemma3)"; exit 77; }
done
case $ANCORA in /*) ;; *) ANCORA=$PWD/$ANCORA ;; esac
[ -x "$ANCORA" ] || { echo "FAIL: no program $ANCORA"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ancora-real-tui.XXXXXX") || exit 1
sock=$tmp/tmux.sock
T() { tmux -u -S "$sock" -f /dev/null "$@"; }
cleanup() { T kill-server >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT

failures=0
t0=$SECONDS
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
show() { cap | sed 's/^/    | /'; }
die() { echo "FAIL $*"; echo "--- screen:"; show; echo "$failures earlier failure(s)"; exit 1; }

# ---- driving the program (as in test_tui.sh) ----------------------------------

cap() { T capture-pane -p -t tui 2>/dev/null; }
send() { T send-keys -t tui -l -- "$1"; }
key() { T send-keys -t tui "$@"; }
cmd() { send "$1"; key Enter; }

# wait_for PATTERN [SECONDS]: until the screen matches (grep -E)
wait_for() {
    local pat=$1 end=$((SECONDS + ${2:-10}))
    while :; do
        cap | grep -qE -- "$pat" && return 0
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}

# wait_gone PATTERN [SECONDS]: until the screen no longer matches
wait_gone() {
    local pat=$1 end=$((SECONDS + ${2:-10}))
    while :; do
        cap | grep -qE -- "$pat" || return 0
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}

# check NAME PATTERN [SECONDS]: the screen shows PATTERN (default within 5 s)
check() {
    if wait_for "$2" "${3:-5}"; then pass "$1"; else fail "$1 (no '$2' on screen)"; show; fi
}

# wait_reply N SECONDS: until message #N (the reply) has come and the status
# bar says idle again. First the turn must start (the bar leaves idle, or the
# header is already there), so an idle screen from before the Enter does not
# count. A long reply of short lines pushes its own header off the top of the
# chat, so the pane is paged up (PgUp) until the header shows. That screen is
# kept in $tmp/reply_screen (reply_text reads it), the header line in
# $tmp/header, and the pane goes back to the bottom (End).
wait_reply() {
    local n=$1 end=$((SECONDS + $2)) s hdr="▎ .*  #$1( ·|$)" pages
    while :; do
        s=$(cap)
        printf '%s\n' "$s" | head -1 | grep -q '● idle' || break
        printf '%s\n' "$s" | grep -qE "$hdr" && break
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
    while :; do
        s=$(cap)
        printf '%s\n' "$s" | head -1 | grep -q '● idle' && break
        [ $SECONDS -lt $end ] || return 1
        sleep 0.3
    done
    for pages in 0 1 2 3 4 5 6 7 8 9 10 11 12; do
        if printf '%s\n' "$s" | grep -qE "$hdr"; then
            printf '%s\n' "$s" >"$tmp/reply_screen"
            printf '%s\n' "$s" | grep -E "$hdr" | head -1 >"$tmp/header"
            echo "$pages" >"$tmp/pages"
            [ "$pages" -gt 0 ] && key End
            return 0
        fi
        key PPage
        sleep 0.3
        s=$(cap)
    done
    return 1
}

# reply_text N: the body of message #N as on screen when wait_reply saw it,
# joined into one line (the lines after its header that carry the ▎ gutter,
# box borders removed).
reply_text() {
    awk -v n="$1" '
        !on && $0 ~ ("▎ .*  #" n "( ·|$)") { on = 1; next }
        on {
            if ($0 !~ /^│ ▎/) exit
            s = $0
            sub(/^│ ▎ ?/, "", s)
            sub(/ *[│┃].*$/, "", s)
            printf "%s ", s
        }' "$tmp/reply_screen"
}

# english TEXT: at least 4 words, and 80% of the non-blank characters ASCII
# letters or ordinary punctuation/digits, at least 60% letters.
english() {
    local text=$1 nb letters plain words
    nb=$(printf '%s' "$text" | tr -d ' \n' | wc -m)
    letters=$(printf '%s' "$text" | tr -cd 'A-Za-z' | wc -m)
    plain=$(printf '%s' "$text" | tr -cd 'A-Za-z0-9.,!?;:()"'"'"'-' | wc -m)
    words=$(printf '%s' "$text" | grep -oE '[A-Za-z]{2,}' | wc -l)
    [ "$nb" -gt 0 ] && [ "$words" -ge 4 ] && [ $((plain * 100)) -ge $((nb * 80)) ] &&
        [ $((letters * 100)) -ge $((nb * 60)) ]
}

# start W H ARGS...: `ancora ARGS` in a fresh tmux server, with $HOME the
# temporary home and no XDG_* variables; stderr is kept in $tmp/stderr (and
# still shown), the exit status goes to $tmp/status.
start() {
    local w=$1 h=$2
    shift 2
    T kill-server >/dev/null 2>&1
    tui_wait_gone "$sock"
    rm -f "$tmp/status" "$tmp/stderr"
    {
        echo '#!/bin/bash'
        echo "export HOME='$HOME_T' LC_ALL=C.UTF-8 LANG=C.UTF-8 ANC_THEMES_DIR='$ANC_SRCDIR/themes'"
        echo 'unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME XDG_CACHE_HOME XDG_RUNTIME_DIR'
        echo 'unset ANCORA_MODEL ANCORA_DB NO_COLOR'
        echo 'ulimit -c 0'
        printf "'%s'" "$ANCORA"
        for a in "$@"; do printf " '%s'" "$a"; done
        echo " 2> >(tee '$tmp/stderr' >&2)"
        echo "echo \$? > '$tmp/status'"
        echo 'echo "exited"'
        echo 'sleep 600'
    } >"$tmp/run.sh"
    chmod +x "$tmp/run.sh"
    T new-session -d -s tui -x "$w" -y "$h" "$tmp/run.sh" || die "tmux could not start"
    wait_for 'F1 Help|^exited$' 30 && ! cap | grep -q '^exited$' || die "the interface did not come up ($*): $(cat "$tmp/stderr" 2>/dev/null)"
}

wait_status() {
    local end=$((SECONDS + 10))
    while [ ! -s "$tmp/status" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
    cat "$tmp/status" 2>/dev/null
}


# ---- 1. an empty $HOME: the default model --------------------------------------

HOME_T=$tmp/home
mkdir -p "$HOME_T/.local/share/ancora/models"
ln -s "$(cd "$ANC_REAL_MODELS" && pwd)/$SMOL_FILE" "$HOME_T/.local/share/ancora/models/$SMOL_FILE" ||
    die "cannot link the model into the temporary home"
DEF=$HOME_T/.local/share/ancora/models/$SMOL_FILE

start 100 30 --seed 7   # a fixed seed: the same reply every run (a chat picks a new one otherwise)
if grep -qF "using the default, $DEF" "$tmp/stderr"; then
    pass "no -m: stderr says it uses the default model ($SMOL_FILE)"
else
    fail "no -m: stderr does not name the default model: $(cat "$tmp/stderr")"
fi
# the name is shortened (…) when the bar is narrow, so the policy still fits
check "100x30: the status bar names the model (general.name)" "^ ● idle  ${SMOL_NAME:0:12}"
check "100x30: the welcome text names the model" "chatting with $SMOL_NAME"

cmd "Hi! Who are you?"
check "the message is shown" "▎ Hi! Who are you\?"
s0=$SECONDS
wait_reply 2 "$REPLY_WAIT" || die "no finished reply within $REPLY_WAIT s"
pass "SmolLM2 replied in $((SECONDS - s0)) s: $(sed 's/^│ *▎ *//; s/ *│.*//' "$tmp/header")"
reply=$(reply_text 2)
if english "$reply"; then
    pass "the reply is English: ${reply:0:70}..."
else
    fail "the reply is not English text: '$reply'"
    show
fi
if grep -q "$SMOL_NAME  #2 · [0-9]* tok" "$tmp/header" &&
    ! grep -qE "max tokens reached|cancelled|error|interrupted" "$tmp/header"; then
    pass "the reply ended by itself (no finish marker in its header)"
else
    fail "the reply did not end by itself: $(cat "$tmp/header")"
fi

# the panels at 100x30 are folded; F2 shows them
if cap | grep -q "─ KV cache ─"; then
    pass "100x30: panels shown"
else
    pass "100x30: panels folded"
    key F2
fi
for title in "KV cache" "Sink tokens" "RoPE" "Memory"; do
    check "100x30: panel '$title'" "─ $title ─"
done
check "RoPE panel: base 100,000 (llama.rope.freq_base)" "│ base 100,000 "
check "KV cache panel: 30 layers, 3 KV heads of 64" "30 layers · 3 KV heads × 64"
check "RoPE panel: the model's context 8,192" "orig ctx 8,192"
check "KV cache panel: the prompt and reply are in the cache" "#2 +model "
check_geometry "100x30 with panels" 100
# the per-layer sink bars (one per layer) need a wide terminal
T resize-window -t tui -x 200 -y 50
check "200x50: Sink tokens panel spans the 30 layers" "per layer L0\.\.L29 "
check_geometry "200x50" 200
T resize-window -t tui -x 100 -y 30
check "back to 100x30: the conversation" "$SMOL_NAME  #2 · [0-9]+ tok"
check_geometry "back to 100x30" 100

cmd "/quit"
st=$(wait_status)
[ "$st" = 0 ] && pass "/quit exits with status 0" || fail "/quit exit status '$st'"
check "after the exit, the terminal shows which model was used" "using the default"

DB=$HOME_T/.local/share/ancora/history.db
if [ -s "$DB" ]; then
    pass "the history database is in the temporary home ($DB)"
else
    fail "no history database at $DB: $(find "$HOME_T" -name '*.db')"
fi
if command -v sqlite3 >/dev/null 2>&1; then
    q() { sqlite3 -batch -noheader "$DB" "$1" 2>&1; }
    [ "$(q 'SELECT count(*) FROM sessions;')" = 1 ] && pass "one session stored" ||
        fail "sessions: $(q 'SELECT id, model_name FROM sessions;')"
    [ "$(q 'SELECT model_name FROM sessions;')" = "$SMOL_NAME" ] && pass "the session names the model" ||
        fail "model_name '$(q 'SELECT model_name FROM sessions;')'"
    q 'SELECT model_path FROM sessions;' | grep -qF "$SMOL_FILE" && pass "the session has the model's path" ||
        fail "model_path '$(q 'SELECT model_path FROM sessions;')'"
    [ "$(q "SELECT content FROM messages WHERE role = 'user';")" = "Hi! Who are you?" ] &&
        pass "the user message is stored" || fail "user message: '$(q "SELECT content FROM messages WHERE role = 'user';")'"
    stored=$(q "SELECT content FROM messages WHERE role = 'assistant' AND finish_reason = 'stop';")
    if [ -n "$stored" ] && english "$stored"; then
        pass "the reply is stored, finish_reason stop"
    else
        fail "assistant message: $(q "SELECT finish_reason, content FROM messages WHERE role = 'assistant';")"
    fi
    # the screen shows a prefix of the stored text (wrapping joins lines with spaces)
    first=$(printf '%s' "$stored" | tr -s ' \n' '  ' | cut -c1-40)
    case $(printf '%s' "$reply" | tr -s ' ' ' ') in
    "$first"*) pass "the stored reply is the one on screen" ;;
    *) fail "stored '$first' vs screen '${reply:0:40}'" ;;
    esac
else
    id=$("$ANCORA" history list --db "$DB" 2>/dev/null | awk 'NR == 1 {print $1}')
    if [ -n "$id" ] && "$ANCORA" history show "$id" --db "$DB" >"$tmp/show.txt" 2>&1 &&
        grep -q "Hi! Who are you?" "$tmp/show.txt" && grep -qF "$SMOL_NAME" "$tmp/show.txt"; then
        pass "the session is in the database (no sqlite3: via history show)"
    else
        fail "session not found in the database: $(cat "$tmp/show.txt" 2>/dev/null)"
    fi
fi

# the reply's token count: the chat's header and the history agree (the
# end-of-turn token that stopped it is counted by neither; the chat once
# showed one more than the review screen and `history show`)
hdr_n=$(sed -n 's/.*#2 · \([0-9]*\) tok.*/\1/p' "$tmp/header" | head -n 1)
sid=$("$ANCORA" history list --db "$DB" 2>/dev/null | awk 'NR == 1 {print $1}')
show_n=$("$ANCORA" history show "$sid" --db "$DB" 2>/dev/null |
    sed -n 's/^--- assistant #2 .*  \([0-9]*\) tokens.*/\1/p' | head -n 1)
if [ -n "$hdr_n" ] && [ "$hdr_n" = "$show_n" ]; then
    pass "the chat and history show count the reply's tokens alike ($hdr_n)"
else
    fail "reply tokens: chat header '$hdr_n', history show '$show_n'"
fi

# ---- 2. Gemma 3: local and global layers ------------------------------------------

start 200 50 -m "$GEMMA" --no-history --seed 7
check "Gemma: the status bar names it" "^ ● idle  $GEMMA_NAME │"
check "Gemma (base model): replies stop at 256 tokens by default" "temp 0\.8  max 256 "
check "Gemma: KV cache panel splits the layers" "15 local · 512 each, 3 global · sink 4096"
check "Gemma: Memory panel 'KV global'" "│ KV global +[0-9.]+ (B|[KM]iB)"
check "Gemma: Memory panel 'KV local'" "│ KV local +[0-9.]+ (B|[KM]iB)"
check "Gemma: Memory panel, the room reserved for both" "│   reserved +[0-9.]+ [KM]iB"
check "Gemma: RoPE panel, global base 1,000,000" "│ base 1,000,000 "
check "Gemma: RoPE panel, the local layers" "15 local layers: base 10,000, window 512"
check_geometry "Gemma 200x50" 200

cmd "The capital of France is"
s0=$SECONDS
wait_reply 2 "$REPLY_WAIT" || die "Gemma: no finished reply within $REPLY_WAIT s"
hdr=$(sed 's/^│ *▎ *//; s/ *[│┃].*//' "$tmp/header")
pass "Gemma replied in $((SECONDS - s0)) s (header $(cat "$tmp/pages") page(s) up): $hdr"
if printf '%s\n' "$hdr" | grep -q "#2 · 256 tok · max tokens reached"; then
    pass "Gemma: the reply stopped at the 256-token default"
elif printf '%s\n' "$hdr" | grep -qE "#2 · ([0-9]|[0-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5]) tok$"; then
    pass "Gemma: the reply ended at EOS before 256 tokens"
else
    fail "Gemma: unexpected reply header: $hdr"
fi
reply=$(reply_text 2)
english "$reply" && pass "Gemma: the reply is English text" || { fail "Gemma reply: '$reply'"; show; }
check "Gemma: local layers hold their own window" "local [0-9]+/512 "
check "Gemma: Sink tokens panel spans the 18 layers" "per layer L0\.\.L17 "

cmd "/set window 64"
check "/set window 64: status bar" "sink policy  window 64  sinks 4"
check "/set window 64: the KV line" "3 global · sink 64 "
check "/set window 64: acts on the global layers" "window 4096 -> 64 .*on the 3 global layers"
check "/set window 64: the local layers keep theirs" "the 15 local layers keep the model's own window of 512"
check_geometry "Gemma 200x50 after /set window" 200
key C-d
st=$(wait_status)
[ "$st" = 0 ] && pass "Gemma: Ctrl-D exits with status 0" || fail "Gemma: exit status '$st'"
[ -n "$(find "$HOME_T" -newer "$tmp/run.sh" -name '*.db' 2>/dev/null)" ] &&
    fail "--no-history wrote a database" || pass "--no-history: the database untouched"

# 80x24: the panels are folded, the chat works, nothing overflows
start 80 24 -m "$GEMMA" --no-history -n 48 --seed 7
wait_gone "─ KV cache ─" 5 && pass "80x24: panels folded" || fail "80x24: panels shown"
check "80x24: the status bar names the model" "^ ● idle  $GEMMA_NAME"
check_geometry "80x24 before the reply" 80
cmd "Once upon a time, in a small village"
wait_reply 2 "$REPLY_WAIT" || die "80x24: no finished reply within $REPLY_WAIT s"
grep -qE "#2 · [0-9]+ tok" "$tmp/header" && pass "80x24: the reply arrived: $(sed 's/^│ *▎ *//; s/ *│.*//' "$tmp/header")" ||
    fail "80x24: reply header: $(cat "$tmp/header")"
reply=$(reply_text 2)
english "$reply" && pass "80x24: the reply is English text" || { fail "80x24 reply: '$reply'"; show; }
check_geometry "80x24 with the reply" 80
key F2
check "80x24: F2 shows the panels" "─ KV cache ─"
# the panels are 36 columns wide here: shorter wordings, no number or
# label cut short (once "sink 409" for 4096, "window" without its 512,
# "KV loca", "max 42.5 m")
check "80x24: the KV panel says local/global, the window whole" "15 local · 512, 3 global · sink 4096 "
check "80x24: the RoPE panel's local layers, the window whole" "│ 15 local: base 10,000, window 512 "
check "80x24: the Memory panel's 'KV local' label whole" "│ KV local +[0-9.]+ ?[KM]iB "
check "80x24: latency figures keep their unit" "│ (latency|lat\.) min [0-9.]+ med [0-9.]+ max [0-9.]+ ms +│"
check_geometry "80x24 with the panels" 80
key F2
wait_gone "─ KV cache ─" 5 && pass "80x24: F2 folds them again" || fail "80x24: F2 did not fold"
check "80x24: the chat is back" "▎ Once upon a time, in a small village"
cmd "/quit"
st=$(wait_status)
[ "$st" = 0 ] && pass "80x24: /quit exits with status 0" || fail "80x24: exit status '$st'"

# 100x30 with the panels: the RoPE panel has room for two strips only;
# they keep the order of three (mid above low; once low came first)
start 100 30 -m "$GEMMA" --no-history
key F2
check "100x30: F2 shows the panels" "─ RoPE ─"
rope=$(cap | sed -n '/─ RoPE ─/,/└/p')
mid=$(printf '%s\n' "$rope" | grep -n "│ mid " | cut -d: -f1)
low=$(printf '%s\n' "$rope" | grep -n "│ low " | cut -d: -f1)
if [ -n "$mid" ] && [ -n "$low" ] && [ "$mid" -lt "$low" ]; then
    pass "100x30: RoPE strips in order, mid above low"
else
    fail "100x30: RoPE strips out of order (mid at row '${mid}', low at row '${low}')"
    show
fi
check_geometry "100x30 with the panels" 100
cmd "/quit"
wait_status >/dev/null
T kill-server >/dev/null 2>&1

# ---- 3. the REPL through a pipe, default model ------------------------------------

printf 'Hi! Who are you?\n/quit\n' |
    env -u XDG_CONFIG_HOME -u XDG_DATA_HOME -u XDG_STATE_HOME -u XDG_CACHE_HOME -u ANCORA_MODEL -u ANCORA_DB \
        HOME="$HOME_T" timeout "$REPLY_WAIT" "$ANCORA" repl --no-history --seed 7 -n 160 >"$tmp/repl.out" 2>"$tmp/repl.err"
rc=$?
[ $rc -eq 0 ] && pass "REPL: exit status 0" || fail "REPL: exit status $rc: $(cat "$tmp/repl.err")"
grep -qF "using the default, $DEF" "$tmp/repl.err" && pass "REPL: stderr names the default model" ||
    fail "REPL stderr: $(cat "$tmp/repl.err")"
if english "$(cat "$tmp/repl.out")"; then
    pass "REPL: an English reply on stdout: $(head -c 70 "$tmp/repl.out")..."
else
    fail "REPL stdout: '$(cat "$tmp/repl.out")'"
fi
grep -q "^ancora:" "$tmp/repl.out" && fail "REPL: messages on stdout"
if command -v sqlite3 >/dev/null 2>&1; then
    [ "$(sqlite3 "$DB" 'SELECT count(*) FROM sessions;')" = 1 ] && pass "REPL --no-history: no new session" ||
        fail "REPL --no-history stored a session"
fi

echo "$failures failure(s) in $((SECONDS - t0)) s"
[ $failures -eq 0 ]
