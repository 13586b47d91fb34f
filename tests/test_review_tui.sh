#!/bin/bash
# test_review_tui.sh — the session browser and the review screen (#13),
# driven in tmux with stories260K.gguf at 200x60 and 80x24: sessions made
# through the real chat, the browser's list and preview, the filter (a word
# only in a message), rename, delete with confirmation, the review screen
# (figures under each reply, the inline parameter change after /set
# window, search with n/N), the replay column after p, and resuming.
# Needs: tmux 3 (else skipped, 77), ../shared/models/stories260K.gguf.
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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ancora-review.XXXXXX") || exit 1
T() { tmux -u -S "$tmp/sock" -f /dev/null "$@"; }
trap 'T kill-server >/dev/null 2>&1; rm -rf "$tmp"' EXIT

failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
cap() { T capture-pane -p -t tui 2>/dev/null; }
show() { cap | sed 's/^/    | /'; }
send() { T send-keys -t tui -l -- "$1"; }
key() { T send-keys -t tui "$@"; }
cmd() { send "$1"; key Enter; }
# wait_for PATTERN [SECONDS]: until the screen matches (grep -E)
wait_for() {
    local i=0
    while [ $i -lt $(( ${2:-10} * 10 )) ]; do
        cap | grep -qE -- "$1" && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
check() { if wait_for "$2" "${3:-5}"; then pass "$1"; else fail "$1 (no '$2' on screen)"; show; fi; }
check_not() { sleep 0.3; if cap | grep -qE -- "$2"; then fail "$1 ('$2' still on screen)"; show; else pass "$1"; fi; }

# start W H: the chat in a fresh tmux server, history in $tmp/h.db
start() {
    T kill-server >/dev/null 2>&1
    tui_wait_gone "$tmp/sock"
    cat >"$tmp/run.sh" <<RUN
#!/bin/bash
export HOME='$tmp/home' XDG_CONFIG_HOME='$tmp/config' XDG_STATE_HOME='$tmp/state'
export XDG_DATA_HOME='$tmp/data' ANC_THEMES_DIR='$ANC_SRCDIR/themes' LC_ALL=C.UTF-8
'$ANCORA' chat -m '$MODEL' --db '$tmp/h.db' -n 40 --seed 3 -t 1
sleep 600
RUN
    chmod +x "$tmp/run.sh"
    mkdir -p "$tmp/home"
    T new-session -d -s tui -x "$1" -y "$2" "$tmp/run.sh"
    wait_for 'F1 Help' 15 || { fail "the interface did not come up"; show; exit 1; }
}
# say TEXT N: a message, then wait for reply #N to finish
say() {
    cmd "$1"
    wait_for "#$2 · [0-9]+ tok" 20 && wait_for "● idle" 20 || { fail "no reply #$2"; show; }
}

# ---- sessions through the real chat (200x60) -----------------------------------

start 200 60
say "Once upon a time there was a dragon who lived in a castle on a hill" 2
cmd "/set window 16"
check "/set window 16 answered" "window .* 16"
say "The dragon flew away" 4
cmd "/new"
say "Lily liked apples" 2
cmd "/new"
say "Tom had a red ball" 2

# ---- the browser ---------------------------------------------------------------------

key F3
check "F3 opens the browser" "Saved sessions"
check "it lists the sessions by their first message" "Once upon a time there was a dragon"
check "three sessions" "3 sessions"
check "the preview shows the selected session's latest message" "^│ .*┆ +Tom had a red ball"
check_geometry "browser at 200x60" 200
key Down
check "the preview follows the selection" "┆ +Lily liked apples"

send "/castle"
check "the filter finds a word that is only in a message" "1 session\b"
check_not "and only that session" "Lily liked apples +│"
key Escape
check "Esc clears the filter" "3 sessions"

send "m"
check "m filters by model" "model: stories260K"
send "m"
check "m again: every model" "model: all"
send "s"
check "s sorts by length" "by length"
send "s"
check "s again: by last activity" "by last activity"

# rename the middle session (Lily), not the one open in the chat
key Home Down
send "t"
check "t asks for a title" "New title: Lily liked apples"
key C-u
send "Apples story"
key Enter
check "the session is renamed in place" "stories260K +Apples story"

send "d"
check "d asks before deleting" "Delete session 2 \"Apples story\" \(2 messages\)\? y deletes"
send "n"
check "any other key keeps it" "not deleted"
check "  (still listed)" "Apples story"
send "d"
send "y"
check "y deletes it" "session 2 deleted"
check_not "  and it is gone from the list" "Apples story"
check "two sessions left" "2 sessions"

# ---- the review screen ------------------------------------------------------------------

key End
key Enter
check "Enter opens the review screen" "Session 1 · Once upon a time"
check "each reply shows the settings it was made with" "sink window [0-9]+ sinks 4, RoPE none base"
check "  the template, speeds, cache and sink attention" "template plain, prompt [0-9.]+ tok/s, decode [0-9.]+ tok/s, cache [0-9]+/[0-9]+, sink attention [0-9.]+%"
check "  the tokens and finish reason in the header" "#2 · .* · [0-9]+ tok( · max tokens reached)? +│"
check_not "  the finish reason in the chat's words (not the stored 'stop'/'length')" "tok · (stop|length)"
check "the parameter change inline between the replies" "settings changed: window [0-9]+ → 16"
if cap | grep -nE "settings changed|#2 ·|#3 ·" | awk -F: '{print $1}' | paste -sd' ' | awk '{exit !($1 < $2 && $2 < $3)}'; then
    pass "  it sits after reply #2 and before message #3"
else
    fail "  the change is not between #2 and #3"; show
fi
check_geometry "review at 200x60" 200

send "/dragon"
key Enter
check "/ searches: first match" "match 1 of [0-9]+ for \"dragon\""
send "n"
check "n: the next match" "match 2 of"
send "N"
check "N: back to the previous" "match 1 of"

send "p"
check "p replays: the summary" "replay PPL [0-9.]+ under sink window 16 sinks 4 · [0-9.]+ as made" 30
n=$(cap | grep -cE "replay PPL [0-9.]+ now · [0-9.]+ as made")
[ "$n" -eq 2 ] && pass "a replay line under each of the 2 replies" || { fail "replay lines: $n, want 2"; show; }
check_not "  'PPL' as in the summary, not 'ppl'" "replay ppl"
now1=$(cap | grep -oE "replay PPL [0-9.]+ now · [0-9.]+ as made" | head -1)
a=$(echo "$now1" | awk '{print $3}'); b=$(echo "$now1" | awk '{print $6}')
[ "$a" != "$b" ] && pass "reply 1 (made with a wide window): window 16 changes its perplexity ($a vs $b)" \
    || { fail "reply 1: the same perplexity under window 16 ($a)"; show; }
check_geometry "review with the replay column at 200x60" 200

send "q"
check "q goes back to the browser" "Saved sessions"
send "r"
check "r resumes the session in the chat" "┌─ Once upon a time there was a dragon"
check_not "  and the browser is closed" "Saved sessions"

# ---- 80x24 -----------------------------------------------------------------------------------

start 80 24
key F3
check "browser at 80x24" "Saved sessions"
check "  list and preview stacked" "^│ (You|stories260K) +│$"
check_geometry "browser at 80x24" 80
key End
key Enter
check "review at 80x24" "Session 1 · Once upon"
check "  the figures, wrapped" "sink window [0-9]+ sinks 4, RoPE none base"
check_geometry "review at 80x24" 80
send "/castle"
key Enter
check "search at 80x24" "match 1 of 1 for \"castle\""
key End
check "End: the last lines in view" "─ ([0-9]+)-([0-9]+) of \\2 ─┘"
send "p"
check "p at 80x24" "replay PPL [0-9.]+ under" 30
# the view was at the end: the last reply's new replay line stays in it
# (it used to fall just below: 12-41 of 41 became 13-42 of 44)
check "  the view still ends at the last line" "─ ([0-9]+)-([0-9]+) of \\2 ─┘"
if cap | grep -B1 -E "^│ +│$" | grep -qE "replay PPL [0-9.]+ now"; then
    pass "  the last reply's replay line in view without scrolling"
else
    fail "  the last reply's replay line is not in view"; show
fi
key End
check "End shows the last reply's replay line" "replay PPL [0-9.]+ now"
check_geometry "review after the replay at 80x24" 80
key Escape
check "Esc goes back to the browser" "Saved sessions"
key Escape
check_not "Esc again closes it" "Saved sessions"

T kill-server >/dev/null 2>&1
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
