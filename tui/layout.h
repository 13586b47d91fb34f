/* layout.h — where everything goes on the screen for a terminal size: the
 * status bar, the chat box, the panels (beside the chat, in place of it on
 * narrow terminals, or folded away), the input box, the message line and
 * the key hints. Pure arithmetic on rects: no drawing, no chat calls. */
#ifndef ANC_LAYOUT_H
#define ANC_LAYOUT_H

#include <stdbool.h>

#include "panel.h"
#include "widgets.h"

/* Below this the screen shows only a "terminal too small" note. */
#define LAYOUT_MIN_COLS 40
#define LAYOUT_MIN_LINES 10
/* Narrower terminals start with the panels folded. */
#define LAYOUT_PANELS_COLS 120

struct layout {
    bool too_small;
    struct rect status, chat, input, message, hints; /* chat and input are boxes */
    bool chat_shown;          /* false when the panels cover the chat */
    bool panels_shown;
    struct rect panels[PANEL_COUNT]; /* boxes; h == 0: not shown (too little room) */
};

/* input_rows: the rows of text the input wants (its box adds 2). */
void layout_compute(struct layout *l, int lines, int cols, int input_rows, bool panels_on);
/* Whether panels are shown when the user has not chosen. */
bool layout_panels_default(int cols);
/* Most rows of text the input box may take at this height. */
int layout_input_max_rows(int lines);

#endif
