#!/usr/bin/env bash
# test_chat_template_ref.sh — proves the committed chat-template goldens
# (tests/golden/chat) come from the official Jinja templates: regenerates them
# with tests/chat_template_ref.py and diffs. Needs python3 with jinja2, else skips.
set -u
SRC=${ANC_SRCDIR:-.}
G=$SRC/tests/golden/chat

py=
for cand in "${REF_PYTHON:-}" python3 /usr/bin/python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import jinja2' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python3 with jinja2 (REF_PYTHON=${REF_PYTHON:-unset})"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$SRC/tests/chat_template_ref.py" "$tmp" || { echo "FAIL: chat_template_ref.py failed"; exit 1; }

fails=0 n=0
for f in "$tmp"/*; do
  b=$(basename "$f")
  n=$((n + 1))
  # the header names the jinja2 version; the renderings must not depend on it
  if ! diff -u <(grep -av '^# written by' "$G/$b") <(grep -av '^# written by' "$f"); then
    echo "FAIL: $G/$b differs from what jinja2 renders (regenerate with tests/chat_template_ref.py)"
    fails=$((fails + 1))
  fi
done
for f in "$G"/*; do
  [ -e "$tmp/$(basename "$f")" ] || { echo "FAIL: $f is not made by chat_template_ref.py"; fails=$((fails + 1)); }
done
[ "$fails" -eq 0 ] || exit 1
echo "PASS: $n chat-template golden files agree with jinja2 ($py)"
exit 0
