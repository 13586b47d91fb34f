/* userconf.h — the user's configuration file,
 * $XDG_CONFIG_HOME/ancora/config (default ~/.config/ancora/config):
 * `key = value` lines with the long option names (model, threads, window,
 * sinks, cache, temp, theme, db, ...); '#' starts a comment.
 * Front-end code; no engine or curses dependency. */
#ifndef ANC_USERCONF_H
#define ANC_USERCONF_H

#include <stddef.h>

/* The config file path (malloc'ed) or NULL when no home is known. */
char *userconf_path(void);

/* Where fetched models live: $XDG_DATA_HOME/ancora/models (default
 * ~/.local/share/ancora/models), malloc'ed; NULL when no home is known. */
char *userconf_models_dir(void);

/* The default chat model (SmolLM2-135M-Instruct, put there by
 * scripts/fetch-models) when it is installed: its path (malloc'ed), else
 * NULL. */
char *userconf_default_model(void);

/* Call fn(ctx, key, value, line) for each setting in the file. A missing
 * file is not an error. Returns 0, or -1 if fn returned non-zero (it has
 * printed its message) or the file cannot be read (message in err). */
int userconf_each(int (*fn)(void *ctx, const char *key, const char *value, int line), void *ctx,
                  char *err, size_t errlen);

/* Set key = value in the file, keeping every other line (written to a
 * temporary file and renamed; folders created 0700). */
int userconf_set(const char *key, const char *value, char *err, size_t errlen);

#endif
