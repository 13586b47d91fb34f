#!/usr/bin/env python3
# jinja_ref.py — the reference for Ancora's Jinja interpreter (core/jinja.c):
# renders chat templates with jinja2 exactly as Hugging Face transformers'
# apply_chat_template does, in the format tests/jinja_render prints, so that
# tests/test_jinja_ref.sh can require byte equality. Never imports Ancora.
#
#   jinja_ref.py convs OUT                 the test conversations, as a file
#   jinja_ref.py fixtures OUTDIR           the templates of chat_template_ref.py
#                                          as OUTDIR/NAME.jinja (+ NAME.tokens)
#   jinja_ref.py render TEMPLATE CONVS [--bos S] [--eos S] [--now T]
#   jinja_ref.py render-gguf MODEL CONVS [--now T]   (the file's template and
#                                          the vocabulary's BOS/EOS strings;
#                                          needs the gguf package)
# Output of render: per conversation, without then with the generation
# prompt, "case NAME prompt=0|1 bytes=LEN\n" + LEN bytes + "\n", or
# "case NAME prompt=0|1 error\n" when the template raises.
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chat_template_ref  # noqa: E402  (its conversations and official templates)

# More conversations than chat_template_ref.py's: contents that look like
# Jinja, quotes and backslashes, CJK and emoji, a long multi-turn chat.
EXTRA = [
    ("jinja_like", [("system", "Use {{ braces }} and {% tags %} freely; {# not a comment #}"),
                    ("user", "What does {{ messages[0]['content'] }} print? '\"\\n\\\\"),
                    ("assistant", "It prints {{ x }} literally. \"quoted\" 'single' \\"),
                    ("user", "{%- raw %}{{ still text }}{% endraw -%}")]),
    ("cjk_emoji", [("user", "日本語のテキスト、한국어 텍스트，中文文本。😀👍🏽 e\u0301"),
                   ("assistant", "  返答 🎉  "),
                   ("user", "\u4e2d\u6587\u3000")]),
    ("long", [("system", "Answer in one word.")] +
             [r for i in range(12) for r in (("user", "Question %d?" % i), ("assistant", "Answer%d" % i))] +
             [("user", "Last question?")]),
    ("think", [("user", "Solve 1+1."),
               ("assistant", "<think>\nsimple addition\n</think>\n\n2"),
               ("user", "And 2+2?")]),
]

CONVERSATIONS = chat_template_ref.CONVERSATIONS + EXTRA

# Special-token strings for the fixture files (from each model's
# tokenizer_config.json); the default is Llama-2's.
TOKENS = {
    "Qwen": ("<|endoftext|>", "<|im_end|>"),
    "deepseek-ai-DeepSeek-R1": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-ai-DeepSeek-V3": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "llama-cpp-deepseek-r1": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "meta-llama": ("<|begin_of_text|>", "<|eot_id|>"),
    "NousResearch-Hermes-3": ("<|begin_of_text|>", "<|im_end|>"),
    "NousResearch-Hermes-2": ("<|begin_of_text|>", "<|im_end|>"),
    "fireworks": ("<|begin_of_text|>", "<|eot_id|>"),
    "meetkai": ("<|begin_of_text|>", "<|eot_id|>"),
    "google-gemma": ("<bos>", "<eos>"),
    "microsoft-Phi": ("<s>", "<|endoftext|>"),
    "CohereForAI": ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    "ibm-granite": ("<|end_of_text|>", "<|end_of_text|>"),
    "openai-gpt-oss": ("<|startoftext|>", "<|return|>"),
}

NOW = 1721952000  # 2024-07-26 00:00:00 UTC: strftime_now's time in the tests


def tokens_for(name):
    for prefix, tok in TOKENS.items():
        if name.startswith(prefix):
            return tok
    return ("<s>", "</s>")


def environment(now):
    """transformers' chat-template environment (utils/chat_template_utils.py)."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(now).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def read_convs(path):
    data = open(path, "rb").read()
    convs, pos = [], 0
    lines = data
    while pos < len(lines):
        nl = lines.index(b"\n", pos)
        line = lines[pos:nl].decode()
        pos = nl + 1
        if not line or line.startswith("#"):
            continue
        name = line.split()[1]
        msgs = []
        while True:
            nl = lines.index(b"\n", pos)
            line = lines[pos:nl].decode()
            pos = nl + 1
            if line == "end":
                break
            _, role, n = line.split()
            n = int(n)
            msgs.append((role, lines[pos:pos + n].decode("utf-8")))
            pos += n + 1
        convs.append((name, msgs))
    return convs


def render_all(source, convs_path, bos, eos, now):
    out = sys.stdout.buffer
    try:
        tpl = environment(now).from_string(source)
    except jinja2.exceptions.TemplateError as e:
        tpl = None
        sys.stderr.write("jinja_ref: template does not parse: %s\n" % e)
    kwargs = {"tools": None, "documents": None}
    if bos is not None:
        kwargs["bos_token"] = bos
    if eos is not None:
        kwargs["eos_token"] = eos
    for name, msgs in read_convs(convs_path):
        for prompt in (0, 1):
            try:
                if tpl is None:
                    raise jinja2.exceptions.TemplateError("no template")
                text = tpl.render(messages=[{"role": r, "content": c} for r, c in msgs],
                                  add_generation_prompt=bool(prompt), **kwargs)
            except Exception as e:  # what transformers would raise to its caller
                sys.stderr.write("jinja_ref: %s prompt=%d: %s: %s\n" % (name, prompt, type(e).__name__, e))
                out.write(b"case %s prompt=%d error\n" % (name.encode(), prompt))
                continue
            t = text.encode("utf-8")
            out.write(b"case %s prompt=%d bytes=%d\n" % (name.encode(), prompt, len(t)) + t + b"\n")


def write_convs(path):
    conv = bytearray(b"# Conversations for tests/test_jinja_ref.sh (written by tests/jinja_ref.py).\n")
    for name, messages in CONVERSATIONS:
        conv += b"conversation %s\n" % name.encode()
        for role, content in messages:
            c = content.encode("utf-8")
            conv += b"message %s %d\n" % (role.encode(), len(c)) + c + b"\n"
        conv += b"end\n"
    with open(path, "wb") as f:
        f.write(bytes(conv))


def gguf_template(path):
    import gguf  # only this mode needs it
    r = gguf.GGUFReader(path)

    def field(key):
        f = r.fields.get(key)
        return None if f is None else f.parts[f.data[0]]

    src = field("tokenizer.chat_template")
    if src is None:
        return None, None, None
    tokens = r.fields["tokenizer.ggml.tokens"]

    def tok(key):
        v = field(key)
        if v is None:
            return None
        i = int(v[0])
        if i < 0 or i >= len(tokens.data):
            return None
        return bytes(tokens.parts[tokens.data[i]]).decode("utf-8")

    return (bytes(src).decode("utf-8"), tok("tokenizer.ggml.bos_token_id"),
            tok("tokenizer.ggml.eos_token_id"))


def main(argv):
    opts = {"--bos": None, "--eos": None, "--now": str(NOW)}
    args = []
    i = 0
    while i < len(argv):
        if argv[i] in opts and i + 1 < len(argv):
            opts[argv[i]] = argv[i + 1]
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if args[:1] == ["convs"] and len(args) == 2:
        write_convs(args[1])
    elif args[:1] == ["fixtures"] and len(args) == 2:
        os.makedirs(args[1], exist_ok=True)
        for fam in chat_template_ref.FAMILIES:
            with open(os.path.join(args[1], "official-%s.jinja" % fam), "wb") as f:
                f.write(chat_template_ref.TEMPLATES[fam].encode("utf-8"))
            t = chat_template_ref.TOKENS[fam]
            with open(os.path.join(args[1], "official-%s.tokens" % fam), "w") as f:
                f.write("%s\n%s\n" % (t["bos_token"], t["eos_token"]))
    elif args[:1] == ["render"] and len(args) == 3:
        src = open(args[1], "rb").read().decode("utf-8")
        render_all(src, args[2], opts["--bos"], opts["--eos"], int(opts["--now"]))
    elif args[:1] == ["render-gguf"] and len(args) == 3:
        src, bos, eos = gguf_template(args[1])
        if src is None:
            sys.stderr.write("jinja_ref: %s has no chat template\n" % args[1])
            return 3
        render_all(src, args[2], bos, eos, int(opts["--now"]))
    elif args[:1] == ["tokens"] and len(args) == 2:
        bos, eos = tokens_for(os.path.basename(args[1]))
        print(bos)
        print(eos)
    else:
        sys.stderr.write(__doc__ or "usage: see the header of jinja_ref.py\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
