/* input.h — the input line: GNU readline in callback mode inside curses.
 * Keys from curses are fed to readline byte by byte; the line buffer and
 * cursor are drawn here, wide characters included. History persists in
 * $XDG_STATE_HOME/ancora/history; Tab completes through chat_complete.
 * Multi-line input: Alt-Enter or Ctrl-J inserts a newline; a bracketed
 * paste keeps its newlines. No engine, no drawing outside its rect. */
#ifndef ANC_INPUT_H
#define ANC_INPUT_H

#include <stdbool.h>
#include <wchar.h>

#include "chat.h"
#include "widgets.h"

/* Key codes the app defines for bracketed paste (define_key). */
#define INPUT_KEY_PASTE_BEGIN (KEY_MAX + 1)
#define INPUT_KEY_PASTE_END (KEY_MAX + 2)

struct input;

/* One input per program (readline is global). c: for completion. */
struct input *input_new(struct chat *c);
void input_free(struct input *in);

/* Feed one key from get_wch (is_key: a KEY_* code). Returns true if a
 * whole line (or end of input) is ready for input_take_line. */
bool input_key(struct input *in, bool is_key, wint_t ch);
/* An Alt chord: ESC then this key. */
bool input_alt_key(struct input *in, bool is_key, wint_t ch);
void input_paste(struct input *in, bool begin);
/* The finished line (malloc'ed; caller frees), or NULL with *eof set when
 * Ctrl-D was pressed on an empty line. */
char *input_take_line(struct input *in, bool *eof);

/* Put text back in the line (e.g. a message refused while busy). */
void input_set_text(struct input *in, const char *text);
void input_clear(struct input *in);
bool input_empty(const struct input *in);
/* Record a submitted line in the history (memory and file). */
void input_history_add(struct input *in, const char *line);

/* Rows of text the line needs at this width (box borders excluded). */
int input_rows(const struct input *in, int width);
/* Draw into the box; sets *cy and *cx to where the terminal cursor belongs. */
void input_draw(const struct input *in, struct rect box, const char *placeholder, bool busy,
                int *cy, int *cx);
/* Completion candidates readline wanted to list (one line), or "". */
const char *input_message(const struct input *in);
void input_message_clear(struct input *in);

#endif
