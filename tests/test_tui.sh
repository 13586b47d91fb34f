#!/bin/bash
# test_tui.sh — drives the real full-screen interface in tmux with
# stories260K.gguf: the four panels, a streaming reply, every slash command
# changing what the screen shows, Ctrl-C, resizing (80x24, 250x70) without
# garbage, Chinese text inside the borders, /quit and Ctrl-D exiting 0 with
# the terminal settings restored, a crash restoring the terminal, NO_COLOR,
# the messages landing in the database, and a reply on a busy machine (keys
# and redraws keep up).
# Needs: tmux (else skipped, 77), ../shared/models/stories260K.gguf.
# Env: ANCORA (the program), ANC_MODELS_DIR, ANC_SRCDIR.

set -u
ANCORA=${ANCORA:-./ancora}
ANC_MODELS_DIR=${ANC_MODELS_DIR:-../shared/models}
ANC_SRCDIR=${ANC_SRCDIR:-.}
MODEL=$ANC_MODELS_DIR/stories260K.gguf

. "$ANC_SRCDIR/tests/tui_lib.sh"   # check_geometry, tui_require
tui_require
[ -d "$ANC_MODELS_DIR" ] || { echo "SKIP: no models folder $ANC_MODELS_DIR"; exit 77; }
[ -f "$MODEL" ] || { echo "FAIL: $MODEL is missing"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ancora-tui.XXXXXX") || exit 1
sock=$tmp/tmux.sock
T() { tmux -u -S "$sock" -f /dev/null "$@"; }
cleanup() { T kill-server >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT

failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
die() { echo "FAIL $*"; echo "--- screen:"; cap; exit 1; }

# ---- driving the program ----------------------------------------------------

cap() { T capture-pane -p -t tui 2>/dev/null; }
send() { T send-keys -t tui -l -- "$1"; }
key() { T send-keys -t tui "$@"; }
cmd() { send "$1"; key Enter; }

# wait_for PATTERN [SECONDS]: until the screen matches (grep -E)
wait_for() {
    local pat=$1 tenths=$(( ${2:-10} * 10 )) i=0
    while [ $i -lt $tenths ]; do
        cap | grep -qE -- "$pat" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# wait_gone PATTERN [SECONDS]: until the screen no longer matches
wait_gone() {
    local pat=$1 tenths=$(( ${2:-10} * 10 )) i=0
    while [ $i -lt $tenths ]; do
        cap | grep -qE -- "$pat" || return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# check NAME PATTERN: the screen shows PATTERN within 5 s
check() {
    if wait_for "$2" 5; then pass "$1"; else fail "$1 (no '$2' on screen)"; cap | sed 's/^/    | /'; fi
}

# start W H ARGS...: a fresh program in a fresh tmux server; its exit
# status and the terminal settings before and after go to files
start() {
    local w=$1 h=$2
    shift 2
    T kill-server >/dev/null 2>&1
    tui_wait_gone "$sock"
    rm -f "$tmp/status" "$tmp/stty.before" "$tmp/stty.after"
    cat >"$tmp/run.sh" <<EOF
#!/bin/bash
export HOME='$tmp/home' XDG_CONFIG_HOME='$tmp/config' XDG_STATE_HOME='$tmp/state'
export XDG_DATA_HOME='$tmp/data' ANC_THEMES_DIR='$ANC_SRCDIR/themes' LC_ALL=C.UTF-8
${ENVX:-}
ulimit -c 0
stty -g > '$tmp/stty.before'
'$ANCORA' chat -m '$MODEL' --db '$tmp/h.db' $*
echo \$? > '$tmp/status'
stty -g > '$tmp/stty.after'
echo "exited"
sleep 600
EOF
    chmod +x "$tmp/run.sh"
    mkdir -p "$tmp/home"
    T new-session -d -s tui -x "$w" -y "$h" "$tmp/run.sh" || die "tmux could not start"
    wait_for 'F1 Help' 15 || die "the interface did not come up"
}

# check_hints NAME PATTERN: the key bar (the bottom line) lists PATTERN
# and none of the chat's own keys, which do nothing in an overlay
check_hints() {
    local line i=0
    while [ $i -lt 50 ]; do
        line=$(cap | tail -1)
        printf '%s\n' "$line" | grep -qE -- "$2" && break
        sleep 0.1
        i=$((i + 1))
    done
    if printf '%s\n' "$line" | grep -qE -- "$2" &&
        ! printf '%s\n' "$line" | grep -qE "F1 Help|Hide panels|F3 Sessions|Newline|Tab Complete|\\^D Quit"; then
        pass "$1"
    else
        fail "$1: key bar '$line'"
    fi
}

# check_redraws NAME SECONDS: two captures SECONDS apart differ, and the
# reply is still being generated at the second
check_redraws() {
    cap >"$tmp/r1"
    sleep "$2"
    cap >"$tmp/r2"
    if ! cmp -s "$tmp/r1" "$tmp/r2" && grep -q generating "$tmp/r2"; then
        pass "$1"
    else
        fail "$1 (the screen did not change in $2 s of generation)"
    fi
}

# The program's pid (the child of the pane's shell).
program_pid() { ps -o pid= --ppid "$(T display-message -p -t tui '#{pane_pid}')" | head -1 | tr -d ' '; }

wait_status() { # (and the terminal settings run.sh writes just after it)
    local i=0
    while { [ ! -s "$tmp/status" ] || [ ! -s "$tmp/stty.after" ]; } && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    cat "$tmp/status" 2>/dev/null
}


# ---- 1. the screen at 120x40 --------------------------------------------------

start 120 40 --window 256 --sinks 4 -n 100000 --seed 7
for title in "KV cache" "Sink tokens" "RoPE" "Memory"; do
    check "panel '$title' is shown at 120x40" "─ $title ─"
done
check "status bar names the policy" "sink policy +window 256 +sinks 4"
# (the Sink tokens panel is 40 columns wide here: its message wraps, whole)
check "Sink tokens panel before any token: its message wraps, whole" "│ (become )?sinks +│"

# ---- 2. a reply streams; Ctrl-C stops it and the program stays ------------------

cmd "Once upon a time"
wait_for "generating" 10 || die "no reply started"
check_redraws "the reply streams (two captures during generation differ)" 0.3
key C-c
check "Ctrl-C stops the reply" "cancelled"
check "and the program is idle again" "● idle"
send "still here"
check "input works after Ctrl-C" "› still here"
key C-u

# ---- 4. Chinese text and the borders ----------------------------------------------

cmd "你好，世界"
check "Chinese input renders" "你好，世界"
key C-c
check_geometry "120x40 with Chinese text" 120

# ---- 5. resizing ------------------------------------------------------------------

T resize-window -t tui -x 80 -y 24
wait_gone "─ KV cache ─" 5 && pass "80x24: panels folded" || fail "80x24: panels still shown"
check "80x24: chat and input" "─ Message ─"
check_geometry "80x24" 80
key F2
check "80x24: F2 shows the panels" "─ KV cache ─"
check "80x24: the KV map's scale with its unit" "█ model +[0-9]+ entries/cell │"
check_geometry "80x24 with panels" 80
key F2
wait_gone "─ KV cache ─" 5 && pass "80x24: F2 folds them again" || fail "F2 did not fold"
T resize-window -t tui -x 250 -y 70
check "250x70: panels shown" "─ Memory ─"
check "250x70: per-layer sink bars" "per layer"
# Memory: the KV cache line gives the entries it holds (with a bar, a share
# of RSS), the room reserved for it on a line of its own without a bar (it
# used to show only the reserved size, whose bar outgrew RSS)
check "250x70: Memory panel gives the KV cache's reserved room" "│   reserved +[0-9.]+ [KMG]?i?B +│"
to_bytes() { awk '{ v = $1; u = $2; m = u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1; printf "%.0f\n", v * m }'; }
mem=$(cap | sed -n 's/.*│ \(KV cache\|  reserved\) *\([0-9.]* [KMG]*i*B\) .*/\1=\2/p')
held=$(printf '%s\n' "$mem" | sed -n 's/^KV cache=//p' | head -1 | to_bytes)
rsvd=$(printf '%s\n' "$mem" | sed -n 's/^  reserved=//p' | head -1 | to_bytes)
if [ -n "$held" ] && [ -n "$rsvd" ] && [ "$held" -gt 0 ] && [ "$held" -lt "$rsvd" ] &&
    cap | grep -qE "│ KV cache +[0-9.]+ [KMG]?i?B  [█▏▎▍▌▋▊▉]+░*"; then
    pass "250x70: KV cache held ($held B, with a bar) below the reserved room ($rsvd B)"
else
    fail "250x70: KV cache line: held '$held', reserved '$rsvd'"
    cap | grep -A7 "─ Memory ─" | sed 's/^/    | /'
fi
check_geometry "250x70" 250
T resize-window -t tui -x 120 -y 40
check "back to 120x40" "─ Sink tokens ─"

# ---- 3. commands change what the screen shows ---------------------------------

cmd "/set window 128"
check "/set window: status bar" "window 128"
cmd "/set sinks 2"
check "/set sinks: status bar" "sinks 2"
check "/set sinks: Sink tokens panel" "→ 2 next token|of 2 ─"
cmd "/set temp 0.5"
check "/set temp: status bar" "temp 0.5"
cmd "/rope theta 20000"
check "/rope theta: RoPE panel" "base 20,000"
cmd "/rope scale yarn 4 512"
check "/rope scale: RoPE panel scaling" "yarn ×4"
check "/rope scale: RoPE panel reach" "orig ctx 512 +reach 2,048"
cmd "/title Anchors away"
check "/title: chat box title" "┌─ Anchors away ─"
cmd "/system You tell short stories."
check "/system: shown in the chat" "System prompt"
before=$(cap | tail -2 | head -1)
cmd "/stats"
i=0; while [ "$(cap | tail -2 | head -1)" = "$before" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ $i -lt 50 ] && pass "/stats: answer in the message line" || fail "/stats: no answer"
cmd "/export md $tmp/out.md"
i=0; while [ ! -s "$tmp/out.md" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if grep -q "Once upon a time" "$tmp/out.md" 2>/dev/null; then pass "/export md: file written"; else fail "/export md: no file"; fi
cmd "/theme light"
check "/theme light: status bar" "theme light"
cmd "/theme no-such-theme"
check "/theme with a bad name: one-line explanation" "no theme 'no-such-theme'"
cmd "/cache window"
check "/cache window: status bar" "window policy"
cmd "/set window banana"
check "bad argument: explained, no crash" "✗"
cmd "/help"
check "/help: help overlay" "─ Help ─"
check "/help: lists the commands" "/rope scale"
key Escape
wait_gone "─ Help ─" 5 && pass "Esc closes the help" || fail "help did not close"
key F1
check "F1 opens the help" "─ Help ─"
check_hints "help: the key bar lists the help's keys" "Scroll .*Esc Close"
key Escape
wait_gone "─ Help ─" 5
check "the chat's key bar is back" "F1 Help F2 Hide panels F3 Sessions"
cmd "/sessions"
check "/sessions: the browser" "Saved sessions"
check "/sessions: lists this session" "Anchors away"
check_hints "browser: the key bar lists the browser's keys" "Enter Review r Resume / Filter .*Esc Back"
send "/"
check_hints "browser filter prompt: its keys in the key bar" "Enter Keep filter Esc Clear filter"
key Escape
check_hints "browser: the list's keys again after the filter" "Enter Review"
key Enter
check "Enter opens the review screen" "─ Session [0-9]+ · Anchors away"
check_hints "review: the key bar lists the review's keys" "/ Search .*p Replay r Resume Esc Back"
send "/"
check_hints "review search prompt: its keys in the key bar" "Enter Search Esc Cancel"
key Escape
check_hints "review: its keys again after the search prompt" "p Replay"
key Escape
check_hints "back in the list: its keys" "Enter Review"
key Escape
wait_gone "Saved sessions" 5 && pass "Esc leaves the browser" || fail "browser did not close"
check "the chat's key bar after the browser" "F1 Help F2 Hide panels F3 Sessions"

# ---- 6. /new, then /quit: exit 0, terminal restored, messages stored -----------

cmd "/new"
check "/new: an empty conversation" "Type a message and press Enter"
cmd "/quit"
st=$(wait_status)
[ "$st" = 0 ] && pass "/quit exits with status 0" || fail "/quit exit status '$st'"
if cmp -s "$tmp/stty.before" "$tmp/stty.after"; then pass "/quit: terminal settings restored"; else fail "/quit: terminal settings differ"; fi
wait_for "exited" 5 && ! cap | grep -q "F1 Help" && pass "/quit: the screen is given back" || fail "/quit: screen not restored"

id=$("$ANCORA" history list --db "$tmp/h.db" 2>/dev/null | awk '/Anchors away/ {print $1; exit}')
if [ -n "$id" ] && "$ANCORA" history show "$id" --db "$tmp/h.db" >"$tmp/show.txt" 2>&1 &&
    grep -q "Once upon a time" "$tmp/show.txt" && grep -q "你好，世界" "$tmp/show.txt"; then
    pass "the messages are in the database (session $id)"
else
    fail "messages not found in the database"
fi

# ---- 7. Ctrl-D on an empty line quits; history of input persists -----------------

start 80 24 -n 5
key C-d
st=$(wait_status)
[ "$st" = 0 ] && pass "Ctrl-D exits with status 0" || fail "Ctrl-D exit status '$st'"
cmp -s "$tmp/stty.before" "$tmp/stty.after" && pass "Ctrl-D: terminal settings restored" || fail "Ctrl-D: terminal differs"
if grep -q "/title Anchors away" "$tmp/state/ancora/history" 2>/dev/null; then
    pass "input history kept in \$XDG_STATE_HOME/ancora/history"
else
    fail "no input history file"
fi

# ---- 8. a crash restores the terminal first ----------------------------------------

start 100 30 -n 5
pid=$(program_pid)
if [ -n "$pid" ]; then
    kill -SEGV "$pid"
    st=$(wait_status)
    [ "$st" = 139 ] && pass "SIGSEGV: the program dies by the signal" || fail "SIGSEGV: status '$st'"
    cmp -s "$tmp/stty.before" "$tmp/stty.after" && pass "SIGSEGV: terminal settings restored" || fail "SIGSEGV: terminal differs"
    check "SIGSEGV: message after the screen is restored" "ancora: fatal error"
else
    fail "could not find the program's pid"
fi

# ---- 9. NO_COLOR gives a monochrome screen ---------------------------------------

ENVX="export NO_COLOR=1" start 100 30 -n 5
if T capture-pane -e -p -t tui | grep -qE $'\e\\[(3[0-7]|38;5)'; then
    fail "NO_COLOR: colours on screen"
else
    pass "NO_COLOR: no colours"
fi
check "NO_COLOR: said in the status bar" "no colour"
key F10
st=$(wait_status)
[ "$st" = 0 ] && pass "F10 quits with status 0" || fail "F10 exit status '$st'"

# ---- 9b. text too long for its place ends in an ellipsis, never cut silently ------
# The session title in the status bar: cut with "…", or left out where
# fewer than 8 columns of it fit (once a bare "H" stood there); the title
# in the session browser's list likewise.

long="The long voyage of the anchor ship across seven seas and back home again to the harbour of stories,"
long="$long told twice over: the long voyage of the anchor ship across seven seas and back home again"
start 250 70 -n 5 --seed 7
cmd "/title $long"
check "/title: the chat box shows it" "┌─ The long voyage"
status=$(cap | head -1)
if printf '%s\n' "$status" | grep -qE "│ The long voyage[^│]*… +session #"; then
    pass "250x70: a long title in the status bar ends in an ellipsis"
else
    fail "250x70: status bar title not cut with an ellipsis: $status"
fi
cmd "/sessions"
check "browser: the list shows the title" "Saved sessions"
if cap | grep -qE "^│ +[0-9]+ .*The long voyage[^┆]*… *┆"; then
    pass "browser: a title wider than its column ends in an ellipsis"
else
    fail "browser: the title column is cut without an ellipsis"
    cap | sed 's/^/    | /'
fi
key Escape
wait_gone "Saved sessions" 5
T resize-window -t tui -x 120 -y 40
wait_for "─ Sink tokens ─" 5
status=$(cap | head -1)
if printf '%s\n' "$status" | grep -qE "│ The long[^│]*… +session #" ||
    ! printf '%s\n' "$status" | grep -q "│ The"; then
    pass "120x40: the title in the status bar is cut with an ellipsis or left out"
else
    fail "120x40: a bare piece of the title in the status bar: $status"
fi
check_geometry "120x40 with a long title" 120
cmd "/quit"
wait_status >/dev/null

# ---- 10. on a busy machine the interface keeps up with the reply -----------------
# One busy loop per CPU (as a compiler or an indexer would), then a reply
# that streams until stopped: typed keys must show while the reply is still
# streaming, the screen must keep changing, and Ctrl-C must stop the reply.
# The engine's threads share the cores with the loops; the interface thread
# must not starve behind them (issue #16).

load_pids=()
stop_load() { [ ${#load_pids[@]} -gt 0 ] && kill "${load_pids[@]}" 2>/dev/null; load_pids=(); }
trap 'stop_load; cleanup' EXIT
for ((i = 0; i < $(nproc); i++)); do
    bash -c 'while :; do :; done' &
    load_pids+=($!)
done
start 120 40 --window 256 --sinks 4 -n 0 --seed 7
cmd "Once upon a time"
wait_for "generating" 15 || die "under load: no reply started"
send "typed while busy"
if wait_for "› typed while busy" 5 && cap | grep -q generating; then
    pass "under load: keys typed during the reply show while it streams"
else
    fail "under load: typed keys did not show during the reply"
    cap | sed 's/^/    | /'
fi
check_redraws "under load: the screen keeps redrawing during the reply" 1
key C-c
check "under load: Ctrl-C stops the reply" "cancelled"
stop_load
key C-u
cmd "/quit"
st=$(wait_status)
[ "$st" = 0 ] && pass "under load: /quit exits 0" || fail "under load: exit status '$st'"

# ---- theme files cover every role in every section --------------------------------

roles=$(sed -n 's/^ *X(ROLE_[A-Z0-9_]*, "\([a-z0-9.]*\)").*/\1/p' "$ANC_SRCDIR/tui/theme.h" | sort)
for f in "$ANC_SRCDIR"/themes/*.theme; do
    ok=1
    for sect in all 256 16 8; do
        got=$(awk -v want="$sect" '
            /^\[/ { s = substr($0, 2, length($0) - 2); next }
            /^[a-z]/ && (s == want || (want == "all" && s == "")) { print $1 }' "$f" | sort)
        [ -z "$got" ] && continue
        [ "$got" = "$roles" ] || { fail "$(basename "$f") [$sect] does not list every role once"; ok=0; }
    done
    [ $ok = 1 ] && pass "$(basename "$f") covers every role"
done

echo "$failures failure(s)"
[ $failures -eq 0 ]
