#!/usr/bin/env python3
# chat_template_ref.py — expected chat-template renderings, made by running the
# published Jinja chat templates of each model family through jinja2 the way
# Hugging Face transformers does. Needs only jinja2; never imports Ancora.
#
# Usage: python3 tests/chat_template_ref.py [OUTDIR]
#   OUTDIR default tests/golden/chat next to this script
# Writes, in OUTDIR:
#   conversations.txt  the fixed conversations (the C test renders the same ones)
#   FAMILY.jinja       the template source used for FAMILY (byte for byte; the C
#                      test feeds it to the family detector)
#   FAMILY.txt         the rendering of every conversation, with and without the
#                      assistant prompt (add_generation_prompt)
#
# File formats (all lengths are byte counts of the UTF-8 text):
#   conversations.txt:  "conversation NAME\n", then per message
#                       "message ROLE LEN\n" + LEN bytes + "\n", then "end\n"
#   FAMILY.txt:         "case NAME prompt=0|1 strict=0|1 bytes=LEN\n" + LEN bytes
#                       + "\n"; strict=0 means the official template would have
#                       refused the conversation (raise_exception) and the text
#                       is what it renders when raise_exception renders nothing
#                       -- the lenient behaviour Ancora follows.
# Lines starting with '#' before the first record are comments.
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the templates ---------------------------------------------------------
#
# Each string is the Jinja source as it appears in the model's
# tokenizer_config.json "chat_template" (after JSON decoding). Where the JSON
# has "\\n" the Jinja source holds backslash-n (a Jinja escape inside a string
# literal): those are raw strings here; where the JSON has "\n" the source
# holds a real newline.

TEMPLATES = {}

# meta-llama/Llama-2-7b-chat-hf (the same template ships with the 13b/70b chat
# models). BOS/EOS are "<s>" / "</s>".
TEMPLATES["llama2"] = (
    r"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    r"{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    r"{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    r"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    r"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    r"{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    r"{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}"
    r"{% else %}{% set content = message['content'] %}{% endif %}"
    r"{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    r"{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    r"{% endif %}{% endfor %}"
)

# meta-llama/Meta-Llama-3-8B-Instruct (also 70B-Instruct). BOS is
# "<|begin_of_text|>".
TEMPLATES["llama3"] = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)

# teknium/OpenHermes-2.5-Mistral-7B (ChatML; Qwen and many others ship the
# same markers, some with a default system message added).
TEMPLATES["chatml"] = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# TinyLlama/TinyLlama-1.1B-Chat-v1.0 (identical to HuggingFaceH4/zephyr-7b-beta).
# The newlines between the tags are real; trim_blocks removes those after
# block tags, so the ones after each {{ ... }} are what remain.
TEMPLATES["zephyr"] = (
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}"
)

# mistralai/Mistral-7B-Instruct-v0.2 as first published (Dec 2023):
# "<s>[INST] u [/INST]a</s>[INST] u2 [/INST]". That template refuses a system
# message; Mistral's later templates (Mixtral-8x7B-Instruct-v0.1 and the
# 2024 revisions) take a leading system message and put it before the first
# user message with "\n\n". The system block below is grafted from those,
# unchanged; the rest is v0.2's text. (A composite: no single published file
# holds exactly this; it is the format Ancora's "mistral" family renders.)
TEMPLATES["mistral"] = (
    r"{%- if messages[0]['role'] == 'system' %}"
    r"{%- set system_message = messages[0]['content'] %}"
    r"{%- set loop_messages = messages[1:] %}"
    r"{%- else %}"
    r"{%- set loop_messages = messages %}"
    r"{%- endif %}"
    r"{{ bos_token }}{% for message in loop_messages %}"
    r"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    r"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    r"{% endif %}{% if message['role'] == 'user' %}"
    r"{% if loop.first and system_message is defined %}"
    r"{{ '[INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}"
    r"{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    r"{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    r"{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    r"{% endif %}{% endfor %}"
)

# google/gemma-3-1b-it (the Gemma-3 instruct models; text-only part is the
# same in the larger ones). Gemma has no system role: Gemma-3's template puts
# the system text + "\n\n" in front of the first turn. Gemma-1/2 templates
# have the same turn format but refuse a system message outright. BOS "<bos>".
TEMPLATES["gemma"] = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

# microsoft/Phi-3.5-mini-instruct (Phi-3-mini-4k-instruct's current template is
# the same without the "and message['content']" test). EOS "<|endoftext|>"
# closes a conversation rendered without the assistant prompt.
TEMPLATES["phi3"] = (
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

# Ancora's own transcript for base models (no published template exists): a
# continuation, so that every turn only appends to the text before it (what a
# streaming cache needs): "{system}\n\n" (when not empty), then the contents
# in order; a reply continues the text before it directly, any other message
# starts on a new line. No prompt is added: the model simply continues.
# BOS is not written in the text: Ancora adds it to the token ids when the
# vocabulary asks for it (tokenizer.ggml.add_bos_token), as for ChatML.
TEMPLATES["plain"] = (
    "{%- set ns = namespace(started=false) -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- if message['content'] -%}{{- message['content'] + '\n\n' -}}{%- endif -%}"
    "{%- else -%}"
    "{%- if ns.started and message['role'] != 'assistant' -%}{{- '\n' -}}{%- endif -%}"
    "{{- message['content'] -}}"
    "{%- set ns.started = true -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# Special-token strings each template receives (from each model's
# tokenizer_config.json / special_tokens_map.json).
TOKENS = {
    "llama2": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "chatml": {"bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>"},
    "zephyr": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "mistral": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>",
              "pad_token": "<pad>"},
    "phi3": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>"},
    "plain": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
}

FAMILIES = ["plain", "llama2", "llama3", "chatml", "zephyr", "mistral", "gemma", "phi3"]

# ---- the conversations -----------------------------------------------------

LITERAL = ("Print this exactly: <|im_end|> <|im_start|>assistant <|eot_id|> "
           "<|start_header_id|>user<|end_header_id|> </s> <s> [INST] [/INST] <<SYS>> "
           "<end_of_turn> <start_of_turn>model <|end|> <|user|> <|assistant|> "
           "<|endoftext|> <bos>")

CONVERSATIONS = [
    ("user_only", [("user", "Hello")]),
    ("system_user", [("system", "You are a helpful assistant."),
                     ("user", "Hello, who are you?")]),
    ("multi_turn", [("system", "You are a concise assistant."),
                    ("user", "What is 2+2?"),
                    ("assistant", "4"),
                    ("user", "And times 3?"),
                    ("assistant", "12."),
                    ("user", "Thanks!")]),
    ("no_system", [("user", "Hi"),
                   ("assistant", "Hello! How can I help?"),
                   ("user", "Tell me a joke.")]),
    ("empty", [("system", ""), ("user", ""), ("assistant", ""), ("user", "")]),
    ("newlines", [("system", "Rules:\n- be brief\n- be kind\n"),
                  ("user", "  line one\nline two\n\n  indented\n"),
                  ("assistant", "\nreply line 1\nreply line 2\n"),
                  ("user", "ok\n")]),
    ("whitespace", [("user", "   padded   "),
                    ("assistant", "   I am an assistant   "),
                    ("user", "\t tab \t\r\n")]),
    ("chinese", [("system", "你是一个乐于助人的助手，请用中文回答。"),
                 ("user", "\u3000你好！请介绍一下长城。\n"),
                 ("assistant", "长城是中国古代的军事防御工程，全长两万多公里。\u00a0"),
                 ("user", "它有多长？")]),
    # every character Python's str.strip() removes is tried somewhere; U+200B
    # and U+FEFF look like spaces but are not stripped
    ("unicode_spaces", [("user", "\u2028\u0085 x \u205f\u1680\u001c"),
                        ("assistant", "\u200a\u2003y\u202f\u2029\u000b\u000c"),
                        ("user", "\u200bz\ufeff \u00a0\u3000\u001f\u2000")]),
    ("literal_markers", [("system", "Follow the user."), ("user", LITERAL)]),
    ("system_only", [("system", "Only a system prompt.")]),
    ("irregular", [("user", "first"),
                   ("user", "second"),
                   ("assistant", "reply"),
                   ("system", "a late system message"),
                   ("tool", "tool output"),
                   ("assistant", "another reply"),
                   ("user", "last")]),
]

# ---- rendering as transformers does it -------------------------------------


class Raised(Exception):
    pass


def render(family, messages, add_generation_prompt):
    """Returns (text, strict). strict is False when the template called
    raise_exception; that call then rendered nothing and rendering went on."""
    raised = []

    def raise_exception(message):
        raised.append(message)
        return ""

    # transformers' chat-template environment: sandboxed, trim_blocks and
    # lstrip_blocks on, loop controls, raise_exception as a global.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.globals["raise_exception"] = raise_exception
    tpl = env.from_string(TEMPLATES[family])
    msgs = [{"role": r, "content": c} for r, c in messages]
    text = tpl.render(messages=msgs, add_generation_prompt=add_generation_prompt,
                      tools=None, documents=None, **TOKENS[family])
    return text, not raised


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "golden", "chat")
    os.makedirs(out, exist_ok=True)

    conv = bytearray(b"# Conversations rendered for tests/golden/chat/FAMILY.txt;\n"
                     b"# written by tests/chat_template_ref.py (do not edit).\n")
    for name, messages in CONVERSATIONS:
        conv += b"conversation %s\n" % name.encode()
        for role, content in messages:
            c = content.encode("utf-8")
            conv += b"message %s %d\n" % (role.encode(), len(c)) + c + b"\n"
        conv += b"end\n"
    write_bytes(os.path.join(out, "conversations.txt"), bytes(conv))

    for family in FAMILIES:
        write_bytes(os.path.join(out, family + ".jinja"), TEMPLATES[family].encode("utf-8"))
        g = bytearray(b"# Expected renderings for the chat template family '%s';\n"
                      b"# written by tests/chat_template_ref.py with jinja2 %s (do not edit).\n"
                      % (family.encode(), jinja2.__version__.encode()))
        for name, messages in CONVERSATIONS:
            for prompt in (False, True):
                text, strict = render(family, messages, prompt)
                t = text.encode("utf-8")
                g += b"case %s prompt=%d strict=%d bytes=%d\n" % (
                    name.encode(), prompt, strict, len(t)) + t + b"\n"
        write_bytes(os.path.join(out, family + ".txt"), bytes(g))
    return 0


if __name__ == "__main__":
    sys.exit(main())
