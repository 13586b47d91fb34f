/* paths.c — where the history database lives ($ANCORA_DB, XDG data folder,
 * ~/.local/share) and creating its folder (0700). Plain C library and POSIX;
 * no SQLite, no engine. */
#include "history.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

char *hist_default_path(void)
{
    const char *env = getenv("ANCORA_DB");
    if (env && *env) return strdup(env);
    /* The XDG spec says relative values are invalid and must be ignored. */
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && xdg[0] == '/') return join(xdg, "/ancora/history.db");
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    if (!home) return NULL;
    return join(home, "/.local/share/ancora/history.db");
}

int hist_make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *dir = strdup(path);
    if (!dir) {
        snprintf(err, errlen, "out of memory");
        return HIST_ERR_NOMEM;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) { /* current folder or "/" itself */
        free(dir);
        return HIST_OK;
    }
    *slash = '\0';
    /* mkdir -p: make each prefix in turn, tolerating those that exist. */
    for (char *p = dir + 1;; p++) {
        bool end = (*p == '\0');
        if (*p == '/' || end) {
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                int e = errno;
                snprintf(err, errlen, "cannot create folder %s: %s", dir, strerror(e));
                free(dir);
                return e == EROFS || e == EACCES || e == EPERM ? HIST_ERR_READONLY
                       : e == ENOSPC || e == EDQUOT         ? HIST_ERR_FULL
                                                            : HIST_ERR_IO;
            }
            *p = saved;
            if (end) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a folder", dir);
        free(dir);
        return HIST_ERR_IO;
    }
    free(dir);
    return HIST_OK;
}
