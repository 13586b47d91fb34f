/* userconf.c — see userconf.h. Depends on libc and POSIX only. */
#include "userconf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *userconf_path(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char *p = NULL;
    if (xdg && *xdg) {
        if (asprintf(&p, "%s/ancora/config", xdg) < 0) p = NULL;
    } else if (home && *home) {
        if (asprintf(&p, "%s/.config/ancora/config", home) < 0) p = NULL;
    }
    return p;
}

char *userconf_models_dir(void)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    char *p = NULL;
    /* the XDG spec: a relative value is invalid and ignored */
    if (xdg && xdg[0] == '/') {
        if (asprintf(&p, "%s/ancora/models", xdg) < 0) p = NULL;
    } else if (home && *home) {
        if (asprintf(&p, "%s/.local/share/ancora/models", home) < 0) p = NULL;
    }
    return p;
}

/* The file scripts/fetch-models installs as the default chat model. */
#define DEFAULT_MODEL_FILE "SmolLM2-135M-Instruct.Q4_1.gguf"

char *userconf_default_model(void)
{
    char *dir = userconf_models_dir(), *p = NULL;
    if (dir && asprintf(&p, "%s/%s", dir, DEFAULT_MODEL_FILE) < 0) p = NULL;
    free(dir);
    if (p && access(p, R_OK) != 0) {
        free(p);
        p = NULL;
    }
    return p;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
    return s;
}

int userconf_each(int (*fn)(void *ctx, const char *key, const char *value, int line), void *ctx,
                  char *err, size_t errlen)
{
    char *path = userconf_path();
    if (!path) return 0;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        int e = errno;
        if (e != ENOENT) snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        free(path);
        return e == ENOENT ? 0 : -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int n = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, fp) >= 0) {
        n++;
        char *s = trim(line);
        if (*s == '#' || *s == '\0') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s line %d: expected 'key = value'", path, n);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (fn(ctx, key, value, n) != 0) rc = -1;
    }
    free(line);
    fclose(fp);
    free(path);
    return rc;
}

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

int userconf_set(const char *key, const char *value, char *err, size_t errlen)
{
    char *path = userconf_path();
    if (!path) {
        snprintf(err, errlen, "no home folder");
        return -1;
    }
    char *tmp = NULL;
    if (mkdirs(path) != 0 || asprintf(&tmp, "%s.tmp%ld", path, (long)getpid()) < 0) {
        snprintf(err, errlen, "cannot create the folder of %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    if (!out) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        if (in) fclose(in);
        free(tmp);
        free(path);
        return -1;
    }
    bool done = false;
    char *line = NULL;
    size_t cap = 0, klen = strlen(key);
    while (in && getline(&line, &cap, in) >= 0) {
        const char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        const char *after = s + klen;
        while (*after == ' ' || *after == '\t') after++;
        if (!done && strncmp(s, key, klen) == 0 && *after == '=') {
            fprintf(out, "%s = %s\n", key, value);
            done = true;
        } else {
            fputs(line, out);
            if (line[strlen(line) - 1] != '\n') fputc('\n', out);
        }
    }
    if (!done) fprintf(out, "%s = %s\n", key, value);
    free(line);
    if (in) fclose(in);
    int rc = 0;
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        rc = -1;
    }
    free(tmp);
    free(path);
    return rc;
}
