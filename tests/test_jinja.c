/* test_jinja.c — unit tests of the Jinja interpreter (core/jinja.c):
 * whitespace control (trim_blocks, lstrip_blocks, "-" and "+"), the
 * expressions and statements chat templates use, the taint mask, and
 * hostile templates: every error is one message with a line, limits stop
 * endless output, deep nesting and long loops. Expected texts are what
 * jinja2 3.1 renders with transformers' settings. Needs core/ only. */
#include "jinja.h"
#include "test_util.h"

#include <stdint.h>

static const struct anc_chat_msg convo[] = {
    { "system", "Be brief.", 9 },
    { "user", "Hi {{ x }}", 10 },
    { "assistant", " Hello ", 7 },
};

/* Render src with the three messages above; NULL and err on failure. */
static char *render(const char *src, bool prompt, size_t max_output, char *err, size_t errlen,
                    unsigned char **taint, size_t *len)
{
    struct jinja_tpl *t = jinja_parse(src, strlen(src), err, errlen);
    if (!t) return NULL;
    struct jinja_params p = { .msgs = convo, .n_msgs = 3, .add_generation_prompt = prompt,
                              .bos_token = "<s>", .eos_token = "</s>", .now = 0,
                              .max_output = max_output };
    size_t n;
    char *out = jinja_render(t, &p, len ? len : &n, taint, err, errlen);
    jinja_tpl_free(t);
    return out;
}

static void expect(const char *src, const char *want)
{
    char err[300] = "";
    char *got = render(src, true, 0, err, sizeof err, NULL, NULL);
    CHECK_MSG(got && strcmp(got, want) == 0, "template %s\n  want \"%s\"\n  got  \"%s\" %s", src, want,
              got ? got : "(null)", err);
    free(got);
}

static void expect_error(const char *src, const char *fragment)
{
    char err[300] = "";
    char *got = render(src, true, 4096, err, sizeof err, NULL, NULL);
    CHECK_MSG(!got && strstr(err, fragment), "template %s\n  want an error with \"%s\"\n  got \"%s\" / \"%s\"",
              src, fragment, got ? got : "(null)", err);
    free(got);
}

static void test_whitespace(void)
{
    expect("a\n{% if true %}\nb\n{% endif %}\nc", "a\nb\nc");               /* trim_blocks */
    expect("a\n    {% if true %}\n  b\n    {% endif %}\nc", "a\n  b\nc");    /* lstrip_blocks */
    expect("a  {%- if true -%}  b  {%- endif %}", "ab");
    expect("a\n  {%+ if true %}b{% endif %}", "a\n  b");
    expect("{% if true +%}\nb{% endif %}", "\nb");
    expect("x {{- ' y ' -}} z", "x y z");
    expect("  {{ 'v' }}\n", "  v");              /* one trailing newline dropped */
    expect("a {# note #}\nb", "a b");
    expect("a\n  {# note #}\nb", "a\nb");
    expect("{% raw %}{{ not }}{% endraw %}", "{{ not }}");
    expect("l1\r\nl2", "l1\nl2");
}

static void test_expressions(void)
{
    expect("{{ messages[0]['content'] }}|{{ messages[-1].role }}", "Be brief.|assistant");
    expect("{{ messages[1:] | length }}{{ messages[::-1][0].role }}", "2assistant");
    expect("{{ 'a' ~ 1 ~ none ~ true }}{{ 'x' + 'y' }}{{ 7 // 2 }}{{ -7 % 3 }}{{ 1 / 4 }}", "a1NoneTruexy320.25");
    expect("{{ 2 ** 10 }} {{ 1.5 * 2 }} {{ 1e20 }} {{ 0.1 + 0.2 }}", "1024 3.0 1e+20 0.30000000000000004");
    expect("{{ 'b' in 'abc' }}{{ 3 not in [1, 2] }}{{ 'k' in {'k': 1} }}", "TrueTrueTrue");
    expect("{{ 1 < 2 < 3 }}{{ not 1 == 1 }}{{ 1 if false }}|{{ 'y' if 0 else 'n' }}", "TrueFalse|n");
    expect("{{ x is defined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ 4 is divisibleby 2 }}",
           "FalseTrueTrueTrueTrue");
    expect("{{ '  pad  ' | trim }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}|{{ x | default('d') }}", "pad|ABab|d");
    expect("{{ [3, 1] | first }}{{ [3, 1] | last }}{{ ['a', 'b'] | join(', ') }}", "31a, b");
    expect("{{ 'a-b-c'.split('-') }}{{ ' x '.strip() }}{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('z', 'c')) }}",
           "['a', 'b', 'c']xTrueTrue");
    expect("{{ {'a': [1, 'x', none], 'b': 'é\"'} | tojson }}", "{\"a\": [1, \"x\", null], \"b\": \"é\\\"\"}");
    expect("{{ {'a': 1} | tojson(indent=2) }}", "{\n  \"a\": 1\n}");
    expect("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;");
    expect("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
           "['Hi {{ x }}']");
    expect("{{ 'a\\tb\\n\\u00e9' }}", "a\tb\n\xc3\xa9");
    expect("{{ 'x'.replace('x', 'yy') }}{{ 'Hello World'.title() }}{{ messages[0].get('nope', 'no') }}",
           "yyHello Worldno");
    expect("{{ strftime_now('%Y-%m-%d') }}", "1970-01-01");
    expect("{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}", "<s></s>True");
}

static void test_statements(void)
{
    expect("{% for m in messages %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}",
           "1TrueFalse3 2FalseFalse3 3FalseTrue3 ");
    expect("{% for m in [] %}x{% else %}empty{% endfor %}", "empty");
    expect("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
           "0134");
    expect("{% for m in messages if m.role != 'system' %}{{ loop.index0 }}{{ m.role[0] }}{% endfor %}", "0u1a");
    expect("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", "3");
    expect("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "1");
    expect("{% if false %}a{% elif true %}b{% else %}c{% endif %}", "b");
    expect("{% macro m(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}", "[1B][23]");
    expect("{% set block %}in {{ 1 }}{% endset %}{{ block | upper }}", "IN 1");
    expect("{% generation %}kept{% endgeneration %}", "kept");
}

static void test_taint(void)
{
    char err[300];
    unsigned char *taint = NULL;
    size_t len = 0;
    char *got = render("<{{ messages[1].content | trim }}>{{ 'lit' }}", true, 0, err, sizeof err, &taint, &len);
    CHECK(got && strcmp(got, "<Hi {{ x }}>lit") == 0);
    if (got && taint && len == 15) {
        CHECK(taint[0] == 0 && taint[11] == 0 && taint[12] == 0 && taint[14] == 0);
        for (size_t i = 1; i < 11; i++) CHECK(taint[i] == 1);
    }
    free(got);
    free(taint);
}

static void test_errors(void)
{
    expect_error("{{ raise_exception('Roles must alternate') }}", "template error: Roles must alternate");
    expect_error("{% if true %}", "missing {% endif %}");
    expect_error("{% for x in y %}", "missing {% endfor %}");
    expect_error("a\nb\n{{ 1 + }}", "line 3");
    expect_error("{{ x | nosuchfilter }}", "unknown filter 'nosuchfilter'");
    expect_error("{{ x is nosuchtest }}", "unknown test");
    expect_error("{% include 'x' %}", "unsupported statement");
    expect_error("{{ undefined_thing.attr }}", "undefined");
    expect_error("{{ 'a' ", "end of template");
    expect_error("{{ 'unterminated }}", "unterminated string");
    expect_error("{{ 1 / 0 }}", "division by zero");
    expect_error("{{ 9223372036854775807 + 1 }}", "overflow");
    expect_error("{% endfor %}", "unexpected");
    expect_error("{{ (1 }}", "expected");
    expect_error("{# open", "comment");
    expect_error("{% set ns.x = 1 %}", "not a namespace");
}

static void test_limits(void)
{
    /* output bounded */
    expect_error("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", "longer than 4096 bytes");
    expect_error("{{ 'x' * 1000000 }}", "longer than");
    /* many steps: a loop over a million numbers, twice nested */
    expect_error("{% set r = range(10000) %}{% for i in r %}{% for j in r %}{% for k in r %}"
                 "{% endfor %}{% endfor %}{% endfor %}", "too many steps");
    /* memory bounded: a new long list in every iteration */
    expect_error("{% for i in range(100000) %}{% set l = range(100000) %}{% endfor %}", "MiB of memory");
    expect_error("{{ range(100000000) }}", "range()");
    /* deep nesting: parentheses, filters, statements, macro recursion */
    char *deep = malloc(200000);
    CHECK(deep != NULL);
    if (!deep) return;
    size_t k = 0;
    k += (size_t)sprintf(deep + k, "{{ ");
    for (int i = 0; i < 5000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 5000; i++) deep[k++] = ')';
    strcpy(deep + k, " }}");
    expect_error(deep, "nested too deeply");
    k = (size_t)sprintf(deep, "{{ 1");
    for (int i = 0; i < 20000; i++) k += (size_t)sprintf(deep + k, " + 1");
    strcpy(deep + k, " }}");
    expect_error(deep, "nested too deeply");
    k = 0;
    for (int i = 0; i < 3000; i++) k += (size_t)sprintf(deep + k, "{%% if true %%}");
    deep[k] = '\0';
    expect_error(deep, "nested too deeply");
    k = (size_t)sprintf(deep, "{{ 'a'");
    for (int i = 0; i < 3000; i++) k += (size_t)sprintf(deep + k, "|trim");
    strcpy(deep + k, " }}");
    expect_error(deep, "nested too deeply");
    free(deep);
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested too deeply");
    /* garbage bytes never crash */
    char junk[512];
    unsigned s = 12345;
    for (int round = 0; round < 2000; round++) {
        static const char alphabet[] = "{}%#-+()[]'\"|.,:=<>!~*/ abcxyz01\n\\";
        size_t n = (size_t)(s % 200);
        for (size_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            junk[i] = alphabet[(s >> 16) % (sizeof alphabet - 1)];
        }
        junk[n] = '\0';
        char err[300];
        char *out = render(junk, round & 1, 4096, err, sizeof err, NULL, NULL);
        free(out);
    }
}

int main(void)
{
    test_whitespace();
    test_expressions();
    test_statements();
    test_taint();
    test_errors();
    test_limits();
    if (test_failures) fprintf(stderr, "%d check(s) failed\n", test_failures);
    TEST_EXIT();
}
