/* chat_pane.h — the conversation as the user reads it: messages wrapped by
 * display width (wide and combining characters respected), user and model
 * turns told apart, the streaming reply with a cursor, notices and errors
 * styled, and a scroll position that stays put while text arrives unless
 * the view is at the bottom. Draws from a struct chat_view; no engine. */
#ifndef ANC_CHAT_PANE_H
#define ANC_CHAT_PANE_H

#include "chat.h"
#include "widgets.h"

struct chat_pane;

struct chat_pane *chat_pane_new(void);
void chat_pane_free(struct chat_pane *p);

/* Draw the view into the box (border included). in_view[i] (or NULL): the
 * share of message i's tokens the model still sees, -1 if none. */
void chat_pane_draw(struct chat_pane *p, struct rect box, const struct chat_view *v,
                    const float *in_view);

/* Scrolling, in lines; the pane clamps at draw time. */
void chat_pane_scroll(struct chat_pane *p, int lines);
void chat_pane_page(struct chat_pane *p, int pages);
void chat_pane_home(struct chat_pane *p);
/* Back to following the end of the conversation. */
void chat_pane_end(struct chat_pane *p);
bool chat_pane_following(const struct chat_pane *p);
/* Forget cached wrapping (a new conversation, or a new theme's glyphs). */
void chat_pane_reset(struct chat_pane *p);

#endif
