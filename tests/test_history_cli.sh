#!/usr/bin/env bash
# test_history_cli.sh — `ancora history ...` through the real program, on a
# database filled by `test_history --fixture`: outputs, exit statuses 0/1/2,
# "ancora: " errors, JSON parsed back by Python's json, Markdown rendered by
# cmark (when installed), delete's confirmation, files that are not ours.
set -u
ANCORA=${ANCORA:-./ancora}
TH=$(dirname "$ANCORA")/tests/test_history
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
[ -x "$ANCORA" ] || { echo "FAIL: $ANCORA is not built"; exit 1; }
[ -x "$TH" ] || { echo "FAIL: $TH is not built"; exit 1; }
have_py=0
[ -x "$PY" ] && have_py=1 || echo "note: no $PY: JSON and terminal checks skipped"

# expect STATUS CMD...: run, check the exit status, keep stdout/stderr
expect() {
  local want=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local got=$?
  [ "$got" -eq "$want" ] || fail "exit $got (want $want): $* -- $(head -c 300 "$tmp/err")"
  if [ "$want" -ne 0 ]; then
    grep -q '^ancora: ' "$tmp/err" || fail "no 'ancora: ' error for: $*"
  fi
}
json_ok() { # FILE PYTHON-EXPRESSION-ON-d: parse with Python's json, then assert
  [ $have_py -eq 1 ] || return 0
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1], encoding="utf-8")); assert eval(sys.argv[2]), sys.argv[2]' "$1" "$2" \
    || fail "JSON check '$2' on $(head -c 200 "$1")"
}
no_escapes() { # FILE: no ESC byte and valid UTF-8 (safe to print on a terminal)
  if grep -q $'\x1b' "$1"; then fail "escape sequence in output of $2"; fi
  if [ $have_py -eq 1 ]; then
    "$PY" -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$1" || fail "invalid UTF-8 from $2"
  fi
}

db=$tmp/h.db
"$TH" --fixture "$db" || { echo "FAIL: fixture"; exit 1; }
H() { "$ANCORA" history "$@"; }

# ---- help and usage errors --------------------------------------------------
expect 0 H --help;  grep -q "Usage: ancora history" "$tmp/out" || fail "history --help"
for sub in list show search export delete path stats; do
  expect 0 H $sub --help; grep -q "^Usage: ancora history $sub" "$tmp/out" || fail "$sub --help"
  grep -q -- "--db PATH" "$tmp/out" || fail "$sub --help lacks --db"
done
expect 2 H
expect 2 H frobnicate;               grep -q "unknown history command" "$tmp/err" || fail "unknown command message"
expect 2 H list --bogus --db "$db"
expect 2 H list --yes --db "$db";    grep -q "does not apply" "$tmp/err" || fail "--yes on list"
expect 2 H list --limit -1 --db "$db"
expect 2 H list extra --db "$db"
expect 2 H show --db "$db";          grep -q "needs a session ID" "$tmp/err" || fail "show without ID"
expect 2 H show abc --db "$db";      grep -q "invalid value for session id" "$tmp/err" || fail "show abc"
expect 2 H show 0 --db "$db"
expect 2 H show 1 2 --db "$db"
expect 2 H show 1 --db
expect 2 H search --db "$db"
expect 2 H search "   " --db "$db"
expect 2 H export 1 --format pdf --db "$db"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "usage error is not one line"

# ---- path ------------------------------------------------------------------
expect 0 H path --db /x/y.db;        [ "$(cat "$tmp/out")" = /x/y.db ] || fail "path --db"
expect 0 H --db /x/z.db path;        [ "$(cat "$tmp/out")" = /x/z.db ] || fail "--db before the command"
expect 0 env ANCORA_DB=/a/b.db "$ANCORA" history path
[ "$(cat "$tmp/out")" = /a/b.db ] || fail "ANCORA_DB"
expect 0 env -u ANCORA_DB XDG_DATA_HOME="$tmp/xdg" "$ANCORA" history path
[ "$(cat "$tmp/out")" = "$tmp/xdg/ancora/history.db" ] || fail "XDG_DATA_HOME: $(cat "$tmp/out")"
expect 0 env -u ANCORA_DB -u XDG_DATA_HOME HOME="$tmp/home" "$ANCORA" history path
[ "$(cat "$tmp/out")" = "$tmp/home/.local/share/ancora/history.db" ] || fail "HOME default: $(cat "$tmp/out")"
[ ! -e "$tmp/home" ] || fail "path created something"

# ---- list --------------------------------------------------------------------
expect 0 H list --db "$db"
[ "$(awk '{print $1}' "$tmp/out" | tr '\n' ' ')" = "3 2 1 " ] || fail "list order: $(cat "$tmp/out")"
grep -q '^1 .* 4 msg  stories260K  Greetings$' "$tmp/out" || fail "list line 1: $(cat "$tmp/out")"
grep -q '^2 .* qwen .*长上下文测试$' "$tmp/out" || fail "list Chinese title"
no_escapes "$tmp/out" "list"
# model names as every other screen shows them (spaces kept, not '_'), the
# columns aligned by display width, a name past 32 columns cut with '…'
"$TH" --fixture-models "$tmp/models.db" || fail "fixture-models"
expect 0 env LC_ALL=C.UTF-8 "$ANCORA" history list --db "$tmp/models.db"
grep -q '^1 .* 0 msg  Smollm2 135M 8k Lc100K Mix1 Ep2   Short$' "$tmp/out" || fail "list: model name with spaces: $(cat "$tmp/out")"
grep -q '^2 .* 0 msg  通义千问 小模型 \{19\}Wide$' "$tmp/out" || fail "list: wide model name padded by width: $(cat "$tmp/out")"
grep -q '^3 .* 0 msg  An Extremely Long Model Name Gi…  Long$' "$tmp/out" || fail "list: long model name cut: $(cat "$tmp/out")"
if [ $have_py -eq 1 ]; then
  "$PY" - "$tmp/out" <<'PYEOF' || fail "list: titles not in one column: $(cat "$tmp/out")"
import sys, unicodedata
def width(s): return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
cols = set()
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    title = line.rsplit("  ", 1)[1]
    cols.add(width(line) - width(title))
sys.exit(0 if len(cols) == 1 else 1)
PYEOF
fi
expect 0 H list --limit 1 --db "$db"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "list --limit 1"
expect 0 H list --json --db "$db"
json_ok "$tmp/out" '[s["id"] for s in d] == [3, 2, 1] and [s["messages"] for s in d] == [3, 2, 4]'
json_ok "$tmp/out" 'd[1]["title"] == "长上下文测试" and d[2]["model_name"] == "stories260K"'
json_ok "$tmp/out" 'd[0]["title"] == "<b>Nasty</b> \x1b[31m `title`" and d[0]["last_activity"].endswith("Z")'

# ---- show --------------------------------------------------------------------
expect 0 H show 1 --db "$db"
grep -q "^Hello there, tell me about dragons$" "$tmp/out" || fail "show text"
grep -q "(max tokens reached)" "$tmp/out" || fail "show finish reason in the chat's words: $(grep -- '---' "$tmp/out")"
grep -q "(length)" "$tmp/out" && fail "show: the stored name 'length' instead of the chat's words"
grep -q "temp: 0.8 -> 0.5" "$tmp/out" || fail "show parameter event"
expect 0 H show 3 --db "$db"
no_escapes "$tmp/out" "show 3"
expect 1 H show 99 --db "$db";       grep -q "^ancora: no session 99 in " "$tmp/err" || fail "show 99 message"
expect 0 H show 1 --json --db "$db"
json_ok "$tmp/out" 'd["session"]["title"] == "Greetings" and len(d["messages"]) == 4'
json_ok "$tmp/out" 'd["messages"][3]["finish_reason"] == "length" and d["messages"][1]["completion_tokens"] == 9'
json_ok "$tmp/out" 'd["session"]["params"] == {"temp": 0.8, "window_length": 256}'
json_ok "$tmp/out" 'd["param_events"][0]["name"] == "temp" and d["param_events"][0]["message_id"] == 2'

# ---- search ------------------------------------------------------------------
expect 0 H search dragon --db "$db"
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "search dragon: $(cat "$tmp/out")"
[ "$(grep -c '^1:[0-9]' "$tmp/out")" -eq 3 ] || fail "search lines start with SESSION:MESSAGE"
grep -q '\[\[Dragon\]\]s guard' "$tmp/out" || fail "search highlight: $(cat "$tmp/out")"
expect 0 H search tell me --db "$db"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "search with two words"
expect 0 H search 模型 --db "$db"
[ "$(grep -c '^2:' "$tmp/out")" -eq 2 ] || fail "search 模型: $(cat "$tmp/out")"
expect 0 H search 注意力汇聚 --db "$db"
grep -q '\[\[注意力汇聚\]\]' "$tmp/out" || fail "search Chinese highlight"
expect 0 H search nothing-like-this --db "$db"
[ ! -s "$tmp/out" ] || fail "search with no match printed something"
expect 0 H search escape --db "$db"
no_escapes "$tmp/out" "search escape"
expect 0 H search --json dragon --limit 2 --db "$db"
json_ok "$tmp/out" 'len(d) == 2 and d[0]["session_id"] == 1 and "[[" in d[0]["snippet"]'

# ---- export ------------------------------------------------------------------
expect 0 H export 3 --format json --db "$db"
cp "$tmp/out" "$tmp/e3.json"
if [ $have_py -eq 1 ]; then
  "$TH" --nasty 0 >"$tmp/nasty0"; "$TH" --nasty 1 >"$tmp/nasty1"
  "$PY" - "$tmp/e3.json" "$tmp/nasty0" "$tmp/nasty1" <<'EOF' || fail "JSON export content differs from the stored text"
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
want0 = open(sys.argv[2], "rb").read().decode("utf-8", "replace")
want1 = open(sys.argv[3], "rb").read().decode("utf-8")
got = [m["content"] for m in d["messages"]]
assert got == ["You are a test.", want0, want1], (got, want0)
assert d["session"]["params"] == "{not json"
assert d["session"]["title"] == "<b>Nasty</b> \x1b[31m `title`"
EOF
fi
expect 0 H export 3 --db "$db"
cp "$tmp/out" "$tmp/e3.md"
no_escapes "$tmp/e3.md" "export md"
grep -q '^`````text$' "$tmp/e3.md" || fail "Markdown fence longer than the backtick runs"
grep -q '^# \\<b\\>Nasty' "$tmp/e3.md" || fail "Markdown title escaped: $(head -1 "$tmp/e3.md")"
if command -v cmark >/dev/null 2>&1; then
  # An independent CommonMark renderer: three code blocks, no live HTML.
  cmark "$tmp/e3.md" >"$tmp/e3.html" || fail "cmark"
  [ "$(grep -c '<pre><code' "$tmp/e3.html")" -eq 3 ] || fail "cmark: not three code blocks"
  if grep -qE '<(script|b)>' "$tmp/e3.html"; then fail "cmark: stored HTML became markup"; fi
  grep -q '&lt;script&gt;' "$tmp/e3.html" || fail "cmark: script text not shown as text"
else
  echo "note: cmark not installed: Markdown rendering check skipped"
fi
expect 0 H export 1 --format json -o "$tmp/e1.json" --db "$db"
[ ! -s "$tmp/out" ] || fail "export -o also wrote stdout"
[ "$(stat -c %a "$tmp/e1.json")" = 600 ] || fail "export file mode"
json_ok "$tmp/e1.json" 'd["session"]["id"] == 1 and d["format"] == "ancora-session"'
expect 1 H export 99 -o "$tmp/e99.md" --db "$db"
[ ! -e "$tmp/e99.md" ] || fail "export of a missing session created a file"
expect 1 H export 1 -o "$tmp/no/such/dir/x.md" --db "$db"
grep -q "^ancora: cannot write" "$tmp/err" || fail "export to a bad path message"

# ---- delete ------------------------------------------------------------------
expect 2 H delete 1 --db "$db";      grep -q -- "--yes" "$tmp/err" || fail "delete on a pipe must ask for --yes"
expect 0 H show 1 --db "$db"
if [ $have_py -eq 1 ]; then
  # On a terminal it asks; "n" keeps the session, "y" deletes it.
  cat >"$tmp/run_on_tty.py" <<'EOF'
import os, pty, sys
answer, argv = sys.argv[1].encode(), sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if b"[y/N]" in out and answer:
        os.write(fd, answer + b"\n")
        answer = b""
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
EOF
  "$PY" "$tmp/run_on_tty.py" n "$ANCORA" history delete 1 --db "$db" >"$tmp/pty.out"; rc=$?
  [ $rc -eq 1 ] || fail "delete answered n: exit $rc"
  grep -q "Delete session 1 (Greetings, 4 messages)? \[y/N\]" "$tmp/pty.out" || fail "delete prompt: $(cat "$tmp/pty.out")"
  expect 0 H show 1 --db "$db"
  "$PY" "$tmp/run_on_tty.py" y "$ANCORA" history delete 1 --db "$db" >"$tmp/pty.out"; rc=$?
  [ $rc -eq 0 ] || fail "delete answered y: exit $rc"
  expect 1 H show 1 --db "$db"
  # Bold matches on a terminal, none with NO_COLOR.
  env -u NO_COLOR "$PY" "$tmp/run_on_tty.py" "" "$ANCORA" history search 模型 --db "$db" >"$tmp/pty.out"
  grep -q $'\x1b\[1m模型\x1b\[0m' "$tmp/pty.out" || fail "no bold highlight on a terminal"
  NO_COLOR=1 "$PY" "$tmp/run_on_tty.py" "" "$ANCORA" history search 模型 --db "$db" >"$tmp/pty.out"
  if grep -q $'\x1b' "$tmp/pty.out"; then fail "escape sequences despite NO_COLOR"; fi
else
  expect 0 H delete 1 --yes --db "$db"
fi
expect 1 H delete 1 --yes --db "$db"; grep -q "no session 1" "$tmp/err" || fail "delete twice message"
expect 0 H search dragon --db "$db"; [ ! -s "$tmp/out" ] || fail "deleted messages still found"
expect 0 H delete 2 --yes --db "$db"

# ---- stats -------------------------------------------------------------------
expect 0 H stats --db "$db"
grep -q "^Sessions:  1$" "$tmp/out" && grep -q "^Messages:  3$" "$tmp/out" || fail "stats: $(cat "$tmp/out")"
expect 0 H stats --json --db "$db"
json_ok "$tmp/out" 'd["sessions"] == 1 and d["messages"] == 3 and d["schema_version"] >= 2 and d["file_bytes"] > 0'

# ---- no database yet: reading creates nothing ----------------------------------
none=$tmp/none/h.db
expect 0 H list --db "$none";        [ ! -s "$tmp/out" ] || fail "list of a missing database"
expect 0 H list --json --db "$none"; json_ok "$tmp/out" 'd == []'
expect 0 H search x --db "$none"
expect 0 H stats --db "$none";       grep -q "not created yet" "$tmp/out" || fail "stats of a missing database"
expect 1 H show 1 --db "$none"
expect 1 H delete 1 --yes --db "$none"
[ ! -e "$tmp/none" ] || fail "a reading command created the database"

# ---- files that are not an Ancora history are left alone ------------------------
printf 'my notes\n\x00\x01 not a database\n' >"$tmp/notes.txt"
cp "$tmp/notes.txt" "$tmp/notes.orig"
expect 1 H list --db "$tmp/notes.txt"; grep -q "not an SQLite database" "$tmp/err" || fail "foreign text file message"
expect 1 H delete 1 --yes --db "$tmp/notes.txt"
cmp -s "$tmp/notes.txt" "$tmp/notes.orig" || fail "a foreign file was modified"
if [ $have_py -eq 1 ]; then
  "$PY" -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table sessions(id integer primary key, x)"); c.execute("insert into sessions values (1, 2)"); c.commit()' "$tmp/other.db"
  cp "$tmp/other.db" "$tmp/other.orig"
  expect 1 H stats --db "$tmp/other.db"; grep -q "another program" "$tmp/err" || fail "foreign SQLite message"
  expect 1 H delete 1 --yes --db "$tmp/other.db"
  cmp -s "$tmp/other.db" "$tmp/other.orig" || fail "a foreign SQLite database was modified"
fi

# ---- a write-protected database: reading works, writing fails cleanly --------------
# (root ignores file modes, so as root the commands run as "nobody")
ro=$tmp/ro
mkdir "$ro" && cp "$db" "$ro/h.db"
AS=()
if [ "$(id -u)" -eq 0 ]; then
  if command -v setpriv >/dev/null 2>&1; then
    chmod 711 "$tmp"; chown -R 65534:65534 "$ro"
    AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  else
    ro=
    echo "note: root without setpriv: the read-only case is covered by test_history only"
  fi
fi
if [ -n "$ro" ]; then
  chmod 444 "$ro/h.db"
  cp "$ro/h.db" "$ro/h.orig"
  expect 0 "${AS[@]}" "$ANCORA" history list --db "$ro/h.db"
  grep -q 'Nasty' "$tmp/out" || fail "read-only list"
  expect 0 "${AS[@]}" "$ANCORA" history search 上下文 --db "$ro/h.db"
  expect 1 "${AS[@]}" "$ANCORA" history delete 3 --yes --db "$ro/h.db"
  grep -q "read-only" "$tmp/err" || fail "read-only delete message: $(cat "$tmp/err")"
  cmp -s "$ro/h.db" "$ro/h.orig" || fail "a read-only database changed"
  # Read-only media: the folder cannot hold SQLite's -shm file either.
  rm -f "$ro"/h.db-*
  chmod 555 "$ro"
  expect 0 "${AS[@]}" "$ANCORA" history show 3 --db "$ro/h.db"
  chmod 755 "$ro"
fi

[ $fails -eq 0 ] && echo "history command line: all checks passed"
exit $((fails > 0))
