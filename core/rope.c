/* rope.c — RoPE frequencies and rotation tables (see rope.h). Angles are
 * formed in double as (double)pos * omega and only the final cos/sin are
 * stored as float, so precision does not decay at large positions.
 * Depends on backend.h's table type only. */
#include "rope.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void rope_params_default(struct rope_params *p, int32_t dims, double base, int32_t orig_ctx)
{
    memset(p, 0, sizeof *p);
    p->dims = dims;
    p->base = base;
    p->scaling = ROPE_NONE;
    p->factor = 1.0;
    p->orig_ctx = orig_ctx;
    p->yarn_beta_fast = 32.0;
    p->yarn_beta_slow = 1.0;
    p->yarn_attn_factor = 1.0;
    p->llama3_low_freq_factor = 1.0;
    p->llama3_high_freq_factor = 4.0;
    p->attn_factor = 1.0;
}

double rope_dynamic_base(double base, int32_t dims, double factor, int32_t orig_ctx, int64_t len)
{
    double L = len > orig_ctx ? (double)len : (double)orig_ctx;
    double ratio = factor * L / orig_ctx - (factor - 1.0);
    return base * pow(ratio, (double)dims / (dims - 2));
}

/* YaRN: the pair index at which the wavelength completes r rotations over L0. */
static double yarn_corr_dim(int32_t dims, double base, int32_t orig_ctx, double r)
{
    return dims * log(orig_ctx / (r * 2.0 * M_PI)) / (2.0 * log(base));
}

void rope_yarn_range(int32_t dims, double base, int32_t orig_ctx, double beta_fast,
                     double beta_slow, int32_t *low, int32_t *high)
{
    double lo = floor(yarn_corr_dim(dims, base, orig_ctx, beta_fast));
    double hi = ceil(yarn_corr_dim(dims, base, orig_ctx, beta_slow));
    *low = (int32_t)(lo > 0 ? lo : 0);
    *high = (int32_t)(hi < dims - 1 ? hi : dims - 1);
}

void rope_frequencies(const struct rope_params *p, int64_t cur_len, double *omega,
                      double *mscale)
{
    int32_t n_pairs = p->dims / 2;
    double base = p->base;
    double s = p->factor > 0 ? p->factor : 1.0;
    *mscale = 1.0;
    if (p->scaling == ROPE_DYNAMIC && s > 1.0)
        base = rope_dynamic_base(base, p->dims, s, p->orig_ctx, cur_len);
    for (int32_t k = 0; k < n_pairs; k++) {
        double w = pow(base, -2.0 * k / p->dims);
        if (p->freq_divisors) w /= p->freq_divisors[k];
        omega[k] = w;
    }
    switch (p->scaling) {
    case ROPE_NONE:
    case ROPE_DYNAMIC:
        break;
    case ROPE_LINEAR:
        for (int32_t k = 0; k < n_pairs; k++) omega[k] /= s;
        break;
    case ROPE_YARN: {
        int32_t low, high;
        rope_yarn_range(p->dims, p->base, p->orig_ctx, p->yarn_beta_fast, p->yarn_beta_slow,
                        &low, &high);
        double span = high - low > 0.001 ? (double)(high - low) : 0.001;
        for (int32_t k = 0; k < n_pairs; k++) {
            double y = (k - low) / span;
            double ramp = y < 0 ? 0 : (y > 1 ? 1 : y);
            double e = 1.0 - ramp; /* extrapolation weight */
            omega[k] = omega[k] / s * (1.0 - e) + omega[k] * e;
        }
        *mscale = p->yarn_attn_factor * (s > 1.0 ? 0.1 * log(s) + 1.0 : 1.0);
        break;
    }
    case ROPE_LLAMA3: {
        double lf = p->llama3_low_freq_factor, hf = p->llama3_high_freq_factor;
        double lam_hi = p->orig_ctx / hf, lam_lo = p->orig_ctx / lf;
        for (int32_t k = 0; k < n_pairs; k++) {
            double lam = 2.0 * M_PI / omega[k];
            if (lam < lam_hi) continue;
            if (lam > lam_lo) {
                omega[k] /= s;
            } else {
                double sigma = (p->orig_ctx / lam - lf) / (hf - lf);
                omega[k] = (1.0 - sigma) * omega[k] / s + sigma * omega[k];
            }
        }
        break;
    }
    }
    if (p->attn_factor > 0) *mscale *= p->attn_factor;
}

/* Room for n entries of n_pairs. */
static bool table_reserve(struct rope_table *tab, int32_t n, int32_t n_pairs)
{
    if (n < 1) n = 1;
    if (n > tab->cap_pos || tab->t.n_pairs != n_pairs) {
        size_t cnt = (size_t)n * (size_t)(n_pairs > 0 ? n_pairs : 1);
        float *c = realloc(tab->cos, cnt * sizeof *c);
        if (!c) return false;
        tab->cos = c;
        float *s = realloc(tab->sin, cnt * sizeof *s);
        if (!s) return false;
        tab->sin = s;
        tab->cap_pos = n;
    }
    return true;
}

static void table_entry(struct rope_table *tab, int32_t i, int32_t n_pairs, int64_t pos,
                        const double *omega, double m)
{
    for (int32_t k = 0; k < n_pairs; k++) {
        double ang = (double)pos * omega[k];
        tab->cos[(size_t)i * n_pairs + k] = (float)(cos(ang) * m);
        tab->sin[(size_t)i * n_pairs + k] = (float)(sin(ang) * m);
    }
}

static void table_publish(struct rope_table *tab, const struct rope_params *p, int32_t n,
                          int32_t n_pairs)
{
    static uint64_t versions; /* unique across tables: a backend keys copies on it */
    tab->t.version = __atomic_add_fetch(&versions, 1, __ATOMIC_RELAXED);
    tab->t.n_pos = n;
    tab->t.n_pairs = n_pairs;
    tab->t.neox = p->neox;
    tab->t.cos = tab->cos;
    tab->t.sin = tab->sin;
}

bool rope_table_fill(struct rope_table *tab, const struct rope_params *p, int32_t n_pos,
                     int64_t cur_len)
{
    int32_t n_pairs = p->dims / 2;
    if (n_pos < 1) n_pos = 1;
    if (!table_reserve(tab, n_pos, n_pairs)) return false;
    double omega[ANC_MAX_HEAD_DIM / 2], m;
    rope_frequencies(p, cur_len, omega, &m);
    for (int32_t pos = 0; pos < n_pos; pos++) table_entry(tab, pos, n_pairs, pos, omega, m);
    table_publish(tab, p, n_pos, n_pairs);
    return true;
}

bool rope_table_fill_list(struct rope_table *tab, const struct rope_params *p,
                          const int64_t *positions, int32_t n, int64_t cur_len)
{
    int32_t n_pairs = p->dims / 2;
    if (!table_reserve(tab, n, n_pairs)) return false;
    double omega[ANC_MAX_HEAD_DIM / 2], m;
    rope_frequencies(p, cur_len, omega, &m);
    for (int32_t i = 0; i < n; i++) table_entry(tab, i, n_pairs, positions[i], omega, m);
    table_publish(tab, p, n > 0 ? n : 1, n_pairs);
    return true;
}

void rope_table_release(struct rope_table *tab)
{
    free(tab->cos);
    free(tab->sin);
    memset(tab, 0, sizeof *tab);
}

static const char *const scaling_names[] = {"none", "linear", "dynamic", "yarn", "llama3"};

const char *rope_scaling_name(enum rope_scaling s)
{
    return (unsigned)s < sizeof scaling_names / sizeof scaling_names[0] ? scaling_names[s] : "?";
}

int rope_scaling_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof scaling_names / sizeof scaling_names[0]; i++)
        if (strcasecmp(scaling_names[i], name) == 0) return (int)i;
    return -1;
}
