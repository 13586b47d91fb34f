#!/usr/bin/env bash
# test_history_crash.sh — kill -9 during a streaming reply, with a real
# child process (`test_history --stream-writer`, which commits the growing
# reply every 50 ms the way the engine does at least once a second). Then
# the real program opens the database: PRAGMA integrity_check must be ok,
# the partial reply present and marked `interrupted`. Three rounds, killed
# at different moments; while a writer lives, its reply is left streaming.
# Then the same for replies whose engine figures and token ids are being
# written (test_history --figures-writer): all of them or none.
set -u
ANCORA=${ANCORA:-./ancora}
TH=$(dirname "$ANCORA")/tests/test_history
tmp=$(mktemp -d)
wpid=
trap '[ -n "$wpid" ] && kill -9 "$wpid" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
[ -x "$ANCORA" ] || { echo "FAIL: $ANCORA is not built"; exit 1; }
[ -x "$TH" ] || { echo "FAIL: $TH is not built"; exit 1; }
db=$tmp/h.db
field() { sed -n "s/^$1=//p" "$tmp/probe"; }

for round in 1 2 3; do
  "$TH" --stream-writer "$db" >"$tmp/ids" 2>"$tmp/writer.err" &
  wpid=$!
  # Wait until enough of the reply is stored (at most 10 s).
  len=0
  for _ in $(seq 1 100); do
    if "$TH" --probe "$db" >"$tmp/probe" 2>/dev/null; then
      len=$(field length); len=${len:-0}
      [ "$len" -ge $((60 * round)) ] && break
    fi
    sleep 0.1
  done
  [ "$len" -gt 0 ] || { fail "round $round: no partial text appeared: $(cat "$tmp/writer.err")"; break; }
  [ "$(field finish)" = streaming ] || fail "round $round: a live writer's reply was marked $(field finish)"
  read -r sid mid <"$tmp/ids"
  kill -9 "$wpid"
  wait "$wpid" 2>/dev/null
  wpid=

  # The real program opens first: that open marks the reply.
  "$ANCORA" history show "$sid" --db "$db" >"$tmp/show" 2>"$tmp/show.err" || fail "round $round: show: $(cat "$tmp/show.err")"
  grep -q "^--- assistant #$mid .*(interrupted)" "$tmp/show" || fail "round $round: show does not say interrupted: $(head -c 400 "$tmp/show")"
  grep -q "^ chunk-0000 chunk-0001" "$tmp/show" || fail "round $round: partial text missing from show"

  "$TH" --probe "$db" >"$tmp/probe" || fail "round $round: probe"
  [ "$(field finish)" = interrupted ] || fail "round $round: finish=$(field finish), want interrupted"
  [ "$(field prefix)" = ok ] || fail "round $round: the partial text is not the streamed one"
  [ "$(field integrity)" = ok ] || fail "round $round: integrity: $(field integrity)"
  after=$(field length)
  [ "${after:-0}" -ge "$len" ] || fail "round $round: text shrank from $len to $after bytes"

  # An independent look with the sqlite3 shell, when installed.
  if command -v sqlite3 >/dev/null 2>&1; then
    [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "round $round: sqlite3 integrity_check"
    [ "$(sqlite3 "$db" "SELECT finish_reason FROM messages WHERE id = $mid")" = interrupted ] \
      || fail "round $round: sqlite3 sees finish_reason $(sqlite3 "$db" "SELECT finish_reason FROM messages WHERE id = $mid")"
  fi
done
command -v sqlite3 >/dev/null 2>&1 || echo "note: no sqlite3 shell: the independent check was skipped"

# A reply whose engine figures and 50 000 token ids are being written: the
# writer finishes such replies back to back; killed at three moments, each
# reply has all its figures and ids, or (interrupted) none.
fdb=$tmp/fig.db
for pause in 0.4 0.9 1.5; do
  rm -f "$fdb" "$fdb-wal" "$fdb-shm"
  "$TH" --figures-writer "$fdb" >"$tmp/fids" 2>"$tmp/fwriter.err" &
  wpid=$!
  sleep "$pause"
  kill -9 "$wpid"
  wait "$wpid" 2>/dev/null
  wpid=
  "$ANCORA" history show 1 --db "$fdb" >"$tmp/fshow" 2>"$tmp/fshow.err" || fail "figures $pause s: show: $(cat "$tmp/fshow.err")"
  "$TH" --probe-figures "$fdb" >"$tmp/probe" || fail "figures $pause s: probe"
  [ "$(field bad)" = 0 ] || fail "figures $pause s: $(field bad) replies with part of their figures"
  [ "$(field integrity)" = ok ] || fail "figures $pause s: integrity: $(field integrity)"
  [ "$(field finished)" -ge 1 ] 2>/dev/null || fail "figures $pause s: no reply finished before the kill: $(cat "$tmp/fwriter.err")"
  echo "figures writer killed after $pause s: $(field finished) replies whole, $(field interrupted) interrupted"
done

[ $fails -eq 0 ] && echo "kill -9 mid-reply: partial text kept, marked interrupted, database sound"
exit $((fails > 0))
