/* conversation.h — inside the conversation engines (ancora.h's anc_conv):
 * the table each kind fills (local in conversation.c, remote in remote.c)
 * and the part every conversation shares. Engine-internal; front-ends see
 * only ancora.h. */
#ifndef ANC_CONVERSATION_H
#define ANC_CONVERSATION_H

#include <stdatomic.h>

#include "ancora.h"

struct anc_conv_class {
    const char *name;
    void (*destroy)(struct anc_conv *c);
    void (*info)(const struct anc_conv *c, struct anc_conv_info *out);
    int (*reply)(struct anc_conv *c, const struct anc_chat_msg *msgs, size_t n, int32_t max_tokens,
                 const struct anc_reply_events *ev, struct anc_reply *out);
    void (*reset)(struct anc_conv *c);
    int (*replay)(struct anc_conv *c, const struct anc_chat_msg *msgs, size_t n, int64_t *first,
                  int64_t *count, size_t *n_tokens, char *err, size_t errlen);
    int32_t (*stats)(const struct anc_conv *c, struct anc_stats *out, int64_t *orig, int32_t cap);
    void (*get_params)(const struct anc_conv *c, struct anc_session_params *out);
    bool (*set_window)(struct anc_conv *c, int32_t window, char *msg, size_t msglen);
    bool (*set_sinks)(struct anc_conv *c, int32_t n_sink, char *msg, size_t msglen);
    bool (*set_policy)(struct anc_conv *c, enum anc_cache_policy p, char *msg, size_t msglen);
    bool (*set_rope)(struct anc_conv *c, const struct anc_rope_settings *r, char *msg, size_t msglen);
    bool (*set_sampling)(struct anc_conv *c, const struct anc_sampling *s, char *msg, size_t msglen);
    size_t (*token_text)(const struct anc_conv *c, int32_t id, char *buf, size_t cap);
    int (*models)(struct anc_conv *c, char ***names, size_t *n, char *err, size_t errlen);
    /* NULL: the kind takes no adapter */
    bool (*set_lora)(struct anc_conv *c, const char *path, float scale, char *msg, size_t msglen);
};

/* The first member of each kind's struct. */
struct anc_conv {
    const struct anc_conv_class *cls;
    atomic_bool cancel;      /* set by anc_conv_cancel, cleared when a reply starts */
};

#endif
