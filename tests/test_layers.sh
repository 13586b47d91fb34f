#!/usr/bin/env bash
# test_layers.sh — the layer rules of DESIGN.md, checked on the sources:
# core/ and kernels/ include no curses, readline or sqlite; history/ no curses,
# readline or engine internals; tui/ reaches the engine only via ancora.h
# (plus dtype.h for type ids) and the store only via history.h.
set -u
SRC=${ANC_SRCDIR:-.}
cd "$SRC" || exit 1
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
inc() { grep -HnE '^[[:space:]]*#[[:space:]]*include' "$@" 2>/dev/null; }

out=$(inc core/*.[ch] kernels/*.[ch] kernels/cpu/*.[ch] | grep -E 'curses|readline|sqlite')
[ -z "$out" ] || bad "engine includes a UI or database header: $out"
out=$(inc history/*.[ch] | grep -E 'curses|readline|"(model|session|gguf|tokenizer|kv_cache|backend|rope|sampler)\.h"')
[ -z "$out" ] || bad "history/ includes curses/readline or engine internals: $out"
out=$(inc tui/*.[ch] | grep -E '"(model|gguf|tokenizer|kv_cache|backend|rope|sampler|util|threadpool|cpu_ops|quant|store|conversation|remote)\.h"')
[ -z "$out" ] || bad "tui/ includes an internal header: $out"
# the remote engine's HTTP and JSON are core/'s (remote.c), never the front-ends'
out=$(inc tui/*.[ch] history/*.[ch] | grep -E 'curl|jansson|cJSON')
[ -z "$out" ] || bad "a front-end or the store includes libcurl or a JSON library: $out"
out=$(inc kernels/*.[ch] kernels/cpu/*.[ch] | grep -E '"(ancora|model|gguf|tokenizer|session|kv_cache|rope|sampler|history)\.h"')
[ -z "$out" ] || bad "kernels/ depends on core/ or history/: $out"
[ $fails -eq 0 ] && echo "layer rules hold"
exit $((fails > 0))
