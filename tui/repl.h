/* repl.h — the line-by-line front-end (`ancora repl`, and `ancora` when
 * stdin or stdout is not a terminal): same controller, same commands,
 * replies streamed to stdout. Front-end code (chat.h, readline). */
#ifndef ANC_REPL_H
#define ANC_REPL_H

#include <stdbool.h>
#include <stddef.h>

#include "chat.h"

/* Print a piece of reply text (the chat's on_piece callback). */
void repl_on_piece(void *ctx, const char *piece, size_t len);

/* Read lines until /quit or end of input. `interactive`: stdin is a
 * terminal (readline with history and completion, prompts, command output
 * on stdout); otherwise plain lines, and only replies go to stdout. */
int repl_run(struct chat *c, bool interactive);

#endif
