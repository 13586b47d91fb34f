# tui_lib.sh — shell helpers shared by the tmux-driven TUI tests
# (tests/test_tui.sh, tests/test_real_tui.sh, tests/test_review_tui.sh);
# sourced, not run. For check_geometry the caller defines cap (print the
# pane), pass and fail, and may define show (print the screen when a check
# fails).

# tui_require: skip the test (77) without tmux 3 (resize-window and the
# other commands used) or a C.UTF-8 locale, which the program, tmux and
# wc -L (display widths) run under; exports that locale.
tui_require() {
    command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed"; exit 77; }
    local major
    major=$(tmux -V | sed -n 's/^tmux \([0-9]*\).*/\1/p')
    [ "${major:-0}" -ge 3 ] 2>/dev/null || { echo "SKIP: tmux 3 or newer needed ($(tmux -V))"; exit 77; }
    export LC_ALL=C.UTF-8 LANG=C.UTF-8
    locale -a 2>/dev/null | grep -qi '^c\.utf-\?8$' || { echo "SKIP: no C.UTF-8 locale"; exit 77; }
}

# tui_wait_gone SOCKET: after `kill-server`, until that tmux server has
# gone (its socket removed; at most 5 s). A new server started on the
# socket while the old one is still exiting fails with "server exited
# unexpectedly", which a loaded machine makes likely.
tui_wait_gone() {
    local n=0
    while [ -S "$1" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}

# Every line at most W display columns; the chat box's right border in the
# same column on every row of the box (wide characters included).
# Returns 0 when the screen is well formed.
check_geometry() {
    local name=$1 w=$2 bad=0 line n=0 want=0 inbox=0 rest pre pw
    while IFS= read -r line; do
        n=$((n + 1))
        pw=$(printf '%s' "$line" | wc -L)
        if [ "$pw" -gt "$w" ]; then
            fail "$name: line $n is $pw columns wide (> $w)"
            bad=1
        fi
        case $line in
        ┌*)
            if [ $want -eq 0 ]; then
                pre=${line%%┐*}
                want=$(( $(printf '%s' "$pre" | wc -L) + 1 ))
                inbox=1
            fi
            ;;
        └*) inbox=0 ;;
        │*)
            [ $inbox -eq 1 ] || continue
            rest=${line:1}
            pre=${rest%%[│┃]*}
            pw=$(( $(printf '%s' "$pre" | wc -L) + 2 ))
            if [ "$pre" = "$rest" ] || [ $pw -ne $want ]; then
                fail "$name: line $n: right border at column $pw, not $want"
                bad=1
            fi
            ;;
        esac
    done < <(cap)
    [ $want -gt 0 ] || { fail "$name: no box on screen"; bad=1; }
    if [ $bad -eq 0 ]; then
        pass "$name: every line fits in $w columns, borders line up"
    elif declare -F show >/dev/null; then
        show
    fi
    [ $bad -eq 0 ]
}
