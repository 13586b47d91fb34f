#!/usr/bin/env python3
"""Independent float64 NumPy reference for several GGUF model families.

One forward pass, driven by a per-family description (FAMILIES below), for
the GGUF architectures `llama`, `qwen2`, `qwen3`, `phi3`, `gemma2`, `gemma3`.
Like llama_ref.py (the stories260K oracle, left unchanged) it shares no code
with Ancora: it reads the file with the PyPI `gguf` package (GGUFReader),
dequantises every tensor with gguf.quants.dequantize (an implementation
independent of Ancora's and of ggml's C code; F32/F16/BF16/Q4_0/Q4_1/Q5_0/
Q5_1/Q8_0/Q2_K..Q6_K/IQ* ...) and computes in float64 throughout.  The
dequantised values are kept as float32 (exact: every block format's value
is a product of an f16/f32 scale and a small integer, representable in
float32) and widened to float64 for the arithmetic; the output matrix is
multiplied in row chunks so a 262144-token vocabulary stays within ~1 GB.

Conventions (each checked against llama.cpp's sources, vendored in
llama-cpp-python 0.3.36 - src/llama-model.cpp, src/llama-hparams.{h,cpp},
src/llama-graph.cpp, src/models/{llama,qwen2,qwen3,phi3,gemma2,gemma3}.cpp,
src/llama-context.cpp, ggml/src/ggml-cpu/ops.cpp, conversion/{phi,gemma}.py,
gguf-py/gguf/constants.py - and, marked [HF], against Hugging Face
transformers 5.25.0: models/*/modeling_*.py, configuration_*.py,
modeling_rope_utils.py, masking_utils.py):

Common to all families
  x = token_embd[tok]; per layer h = rmsnorm(x)*attn_norm, attention, residual,
  h = rmsnorm(x)*ffn_norm, gated FFN, residual; logits = output(rmsnorm(x)*
  output_norm).  rmsnorm(x) = x / sqrt(mean(x^2) + eps), eps =
  {arch}.attention.layer_norm_rms_epsilon (required).  output.weight absent
  -> token_embd is used (llama, qwen2, qwen3, phi3, gemma3: TENSOR_NOT_REQUIRED
  + TENSOR_DUPLICATED in load_arch_tensors; gemma2 never reads output.weight).
  head_dim_k = {arch}.attention.key_length, head_dim_v = .value_length, both
  default n_embd/n_head (llama_model_base::load_hparams); n_head_kv defaults
  to n_head; n_rot = {arch}.rope.dimension_count, default head_dim_k, and must
  equal head_dim_k for llama (same function).  Q/K/V come from separate
  attn_q/attn_k/attn_v or from a fused attn_qkv split [q | k | v] along the
  output rows (build_qkv; create_tensor_qkv accepts either for every family
  here); q/k/v and attn_output biases are used when present (optional in
  llama.cpp for all six; Qwen2 checkpoints always have q/k/v biases [HF
  Qwen2Attention bias=True]).  GQA: query head j uses KV head
  j // (n_head/n_head_kv).  Attention logits are scaled by 1/sqrt(head_dim_k)
  (build_attn kq_scale / Q pre-scaled by f_attention_scale; see Gemma).
  Causal mask; sliding-window layers additionally mask key p0 for query p1
  when p1 - p0 >= sliding_window (llama_hparams::is_masked_swa STANDARD) i.e.
  a query sees the last `sliding_window` tokens, itself included [HF
  masking_utils.sliding_window_overlay: kv_idx > q_idx - sliding_window].

RoPE (ggml_rope_ext, ggml-cpu ops.cpp rope_yarn/ggml_rope_cache_init)
  pair k in [0, n_rot/2): theta_k = p * base^(-2k/n_rot) / ff[k] * freq_scale,
  (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos), cos and sin both multiplied
  by attn_factor = {arch}.rope.scaling.attn_factor (default 1; llama-context.cpp
  yarn_attn_factor *= hparams.rope_attn_factor, ext_factor 0 unless YaRN).
  Pairing (llama_model_rope_type): llama = NORM, adjacent (2k, 2k+1);
  qwen2, qwen3, phi3, gemma2, gemma3 = NEOX, halves (k, k + n_rot/2) [HF
  rotate_half].  Dimensions past n_rot pass through.
  freq_scale = 1/{arch}.rope.scaling.factor (legacy .rope.scale_linear) when
  given and the scaling type (default "linear") is not "none"; YaRN is
  refused.  ff = per-pair divisors: llama `rope_freqs.weight` (Llama 3.1);
  phi3 `rope_factors_long.weight` if n_ctx > orig else `rope_factors_short.
  weight` (llama_model::get_rope_factors), orig = {arch}.rope.scaling.
  original_context_length (default context_length).  Which n_ctx: llama.cpp
  uses its context size (cparams.n_ctx_seq), HF [modeling_rope_utils
  _compute_longrope_parameters] uses seq_len = max position + 1 of the
  current forward call.  Here it is fixed per session: --rope-ctx N if
  given, else the whole sequence length (prompt + generated; ppl: the chunk
  length).  The LongRoPE attention factor is the file's attn_factor key
  (conversion/phi.py writes sqrt(1 + ln(s)/ln(orig)), s = context_length/
  orig, and llama.cpp applies it whichever factor set is used, as HF does).

Per family (FAMILIES)
  llama   NORM RoPE, SiLU gated FFN (ffn_gate/ffn_up/ffn_down), optional
          rope_freqs, tied output allowed.
  qwen2   as llama with NEOX RoPE (+ q/k/v biases, optional output.bias).
  qwen3   NEOX; attn_q_norm/attn_k_norm (size head_dim_k) RMS-normalise each
          head of q and k (same eps) before RoPE; no biases (qwen3.cpp) [HF
          Qwen3Attention q_norm/k_norm on head_dim].
  phi3    NEOX; fused ffn_up of 2*n_ff rows: first half gate, second half up,
          ffn = silu(gate) * up (LLM_FFN_SWIGLU, ggml_swiglu unswapped) [HF
          Phi3MLP gate, up = chunk(2)]; LongRoPE as above.  SWA is disabled
          for phi3 by llama.cpp (phi3.cpp, "Phi SWA is currently disabled")
          although HF applies config.sliding_window: this reference follows
          llama.cpp and ignores {arch}.attention.sliding_window for phi3.
  gemma2  x = token_embd[tok] * sqrt(n_embd) (ggml_scale sqrtf(n_embd); HF
          multiplies by hidden_size**0.5 rounded to the weight dtype); norm
          weights used as stored (the converter adds Gemma's 1 + w,
          conversion/gemma.py); attn_norm -> attention -> post_attention_norm
          -> residual; ffn_norm -> FFN -> post_ffw_norm -> residual; FFN
          gelu_tanh(gate) * up (LLM_FFN_GELU + LLM_FFN_PAR = ggml_geglu_split,
          GELU tanh form 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) [HF
          gelu_pytorch_tanh]); output is always token_embd (gemma2.cpp).
          Attention scale 1/sqrt(head_dim_k), except n_layer == 46 (27B):
          1/sqrt(n_embd/n_head) (gemma2.cpp f_attention_scale).  Soft-caps:
          attention logits (after the scale) s -> c*tanh(s/c), c =
          {arch}.attn_logit_softcapping default 50; final logits likewise, c =
          {arch}.final_logit_softcapping default 30 (llama-hparams.h
          defaults; applied unconditionally).  SWA always on: window
          {arch}.attention.sliding_window (default 4096), pattern 2: layer il
          local iff il % 2 == 0 (set_swa_pattern: il % n < n-1) [HF
          layer_types: sliding iff (i+1) % 2].  Local layers' RoPE base =
          {arch}.rope.freq_base_swa if present else the file's base (NOT
          10000: gemma2.cpp sets rope_freq_base_train_swa = rope_freq_base_
          train), freq_scale likewise the file's.
  gemma3  as gemma2 plus attn_q_norm/attn_k_norm per head before RoPE; no
          attention soft-cap; final soft-cap only when the key is present
          (gemma3.cpp sets it to 0 then reads the key).  27B exception at
          n_layer == 62.  SWA only when {arch}.attention.sliding_window is
          present and > 0 (else every layer is global); pattern 6: layer il
          global iff il % 6 == 5 i.e. (il+1) % 6 == 0 [HF configuration_
          gemma3 layer_types].  Local layers: base {arch}.rope.freq_base_swa
          if present else 10000 (llama-hparams.h rope_freq_base_train_swa
          default; HF rope_local_base_freq 10000), freq_scale 1; global
          layers: the file's base and rope.scaling.factor.
  gemma2/3: {arch}.attention.sliding_window_pattern overrides the pattern,
  either as an integer n (local iff il % n < n-1; 0 = all local) or as an
  array of per-layer booleans (true = local) (load_swa_pattern).

Refused (a message and exit 1, like llama.cpp's loader): a missing required
tensor; a tensor whose shape differs from what the metadata implies; a
tensor the family does not use (llama.cpp: "wrong number of tensors");
a 1-D tensor (norms, biases, rope factors) not stored as F32/F16/BF16;
non-finite weights; n_head or n_head_kv < 1 or n_head % n_head_kv != 0;
head sizes that do not divide; sliding_window < 1 or >= 2^31 (llama.cpp
would mask every key: is_masked_swa compares with (int32_t) n_swa; for
gemma3, where llama.cpp reads 0 as "no SWA", the converter omits the key
instead, so 0 is refused here too); a soft-cap <= 0; YaRN scaling.

Validated against llama.cpp (a CPU build of the same vendored sources, via
tests/reference/compare_llamacpp.py; llama-perplexity with -ctk f32 -ctv f32
-fa off, chunked PPL, relative difference of the PPL):
  tiny F32 files of write_family.py, ctx 32 (64 for phi3), 2-3 chunks:
  llama 1.8e-7, llama-tied (+rope_freqs) 1.9e-7, qwen2 4.7e-8, qwen3 1.6e-8,
  phi3 1.4e-7, phi3-longrope long factors 6e-8 and short factors (orig ctx
  set to 512) 5.5e-8, gemma2 3.2e-5, gemma3 4.6e-5 (the Gemma residue is
  ggml's float16 GELU table: rounding the GELU input/output to f16 in this
  reference brings it to 2.6e-6 / 1.2e-5); gemma2 with rope.freq_base 20000:
  2.4e-6 with local base = file base, 2.4e-3 with local base 10000.
  Note: llama.cpp pads n_ctx to a multiple of 256, so its LongRoPE choice
  uses n_ctx >= 256 (--rope-ctx 256 reproduces it at -c 32).
  Real files: SmolLM2-135M-Instruct Q4_1 dequantised to F32
  (dequant_gguf.py): greedy 24/24 tokens on 2 prompts, PPL (ctx 128, 2
  chunks) 9.9604 both, rel 4.9e-6.  Gemma 3 270M Q4_K_M dequantised to F32:
  greedy 24/24, PPL 8.7088 vs 8.7080, rel 9.6e-5 (the f16 GELU table).
  The quantised files themselves: llama.cpp rounds every matmul input to 8
  bits (Q8_0/Q8_1/Q8_K), so: SmolLM2 Q4_1 greedy 5/24, 12/24 (ref top-2 gap
  0.0032 there), 24/24 on three prompts, PPL 9.9028 vs 9.9604 (5.8e-3);
  Gemma 3 Q4_K_M greedy 15/24 (gap 0.012), 24/24, 24/24, PPL 8.8169 vs
  8.7080 (1.25e-2).

Not modelled: EOG tokens other than eos/eot (greedy stops at
tokenizer.ggml.eos_token_id or .eot_token_id), MoE, multimodal inputs.

CLI (a superset of llama_ref.py's):
    model_ref.py MODEL --greedy N --out-tokens FILE --out-logits FILE
                 [--logit-steps K] [--prompt-ids "1 2 3"] [--out-text FILE]
                 [--rope-ctx N] [--no-self-check]
    model_ref.py MODEL --ppl-ids FILE --ctx N [--max-chunks K] [--rope-ctx N]
    model_ref.py MODEL --info
The perplexity mode is llama.cpp's llama-perplexity convention (see
ppl_ref.py and TECHNIQUES.md section 3): chunks of N tokens, first token of
each chunk replaced by BOS when the vocabulary adds one
(tokenizer.ggml.add_bos_token, default true for `llama` SentencePiece
vocabularies; tools/perplexity/perplexity.cpp: `if (add_bos && j == 0)`;
ppl_ref.py always replaces it), only the second half scored; prints
"PPL = %.4f +/- %.5f" on stdout.
"""

import argparse
import math
import os
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as QT, quants


# --------------------------------------------------------------------------
# Family descriptions
# --------------------------------------------------------------------------

FAMILIES = {
    "llama": dict(rope="norm", qk_norm=False, post_norms=False, embd_scale=False,
                  act="silu", ffn="split", rope_factors="freqs", output="optional",
                  swa=None, attn_softcap=None, final_softcap=None, big_n_layer=None,
                  n_rot_is_head=True),
    "qwen2": dict(rope="neox", qk_norm=False, post_norms=False, embd_scale=False,
                  act="silu", ffn="split", rope_factors=None, output="optional",
                  swa=None, attn_softcap=None, final_softcap=None, big_n_layer=None,
                  output_bias=True),
    "qwen3": dict(rope="neox", qk_norm=True, post_norms=False, embd_scale=False,
                  act="silu", ffn="split", rope_factors=None, output="optional",
                  swa=None, attn_softcap=None, final_softcap=None, big_n_layer=None,
                  n_rot_is_head=True),
    "phi3": dict(rope="neox", qk_norm=False, post_norms=False, embd_scale=False,
                 act="silu", ffn="fused", rope_factors="longrope", output="optional",
                 swa=None, attn_softcap=None, final_softcap=None, big_n_layer=None,
                 output_bias=True),
    # swa: pattern n, default window (None: SWA only if the key is present),
    # default base of local layers ("file" or a number)
    "gemma2": dict(rope="neox", qk_norm=False, post_norms=True, embd_scale=True,
                   act="gelu", ffn="split", rope_factors=None, output="tied",
                   swa=dict(pattern=2, default_window=4096, base="file"),
                   attn_softcap=("default", 50.0), final_softcap=("default", 30.0),
                   big_n_layer=46),
    "gemma3": dict(rope="neox", qk_norm=True, post_norms=True, embd_scale=True,
                   act="gelu", ffn="split", rope_factors=None, output="optional",
                   swa=dict(pattern=6, default_window=None, base=10000.0),
                   attn_softcap=None, final_softcap=("optional", None),
                   big_n_layer=62),
}

FLOAT_TYPES = (QT.F32, QT.F16, QT.BF16)


class ModelError(Exception):
    pass


def field_value(reader, key, default=None):
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def dequant(t):
    """A GGUF tensor -> float32 array in numpy order (GGUF ne reversed)."""
    shape = tuple(reversed([int(n) for n in t.shape]))
    try:
        arr = quants.dequantize(np.asarray(t.data), t.tensor_type)
    except NotImplementedError as e:
        raise ModelError(f"{t.name}: type {t.tensor_type.name} cannot be dequantised: {e}")
    arr = np.asarray(arr, dtype=np.float32).reshape(shape)
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{t.name}: non-finite values")
    return arr


class Model:
    """Loads and validates a file; weights as float64 (layers) or float32
    (the big embedding/output matrices, used in chunks)."""

    BIG = 1 << 24          # matrices with more elements stay float32

    def __init__(self, path):
        reader = GGUFReader(path)
        arch = field_value(reader, "general.architecture")
        if arch not in FAMILIES:
            raise ModelError(f"architecture {arch!r} not supported "
                             f"(known: {', '.join(FAMILIES)})")
        self.arch = arch
        F = self.fam = FAMILIES[arch]

        def hp(key, default=None, required=True):
            v = field_value(reader, f"{arch}.{key}", default)
            if v is None and required:
                raise ModelError(f"missing metadata {arch}.{key}")
            return v

        def hp_int(key, default=None, required=True):
            v = hp(key, default, required)
            if v is None:
                return None
            if isinstance(v, (list, tuple)):
                raise ModelError(f"{arch}.{key}: per-layer arrays are not supported")
            return int(v)

        self.n_embd = hp_int("embedding_length")
        self.n_layer = hp_int("block_count")
        self.n_head = hp_int("attention.head_count")
        self.n_head_kv = hp_int("attention.head_count_kv", self.n_head)
        self.n_ff = hp_int("feed_forward_length")
        self.n_ctx_train = hp_int("context_length", 0, required=False) or 0
        self.eps = float(hp("attention.layer_norm_rms_epsilon"))
        for name, v in (("embedding_length", self.n_embd), ("block_count", self.n_layer),
                        ("attention.head_count", self.n_head),
                        ("attention.head_count_kv", self.n_head_kv),
                        ("feed_forward_length", self.n_ff)):
            if not 1 <= v <= (1 << 20):
                raise ModelError(f"{arch}.{name} = {v} is out of range")
        if self.n_head % self.n_head_kv:
            raise ModelError(f"n_head {self.n_head} is not a multiple of n_head_kv {self.n_head_kv}")
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise ModelError(f"rms epsilon {self.eps} is not a positive number")
        default_hd = self.n_embd // self.n_head
        self.head_k = hp_int("attention.key_length", default_hd)
        self.head_v = hp_int("attention.value_length", default_hd)
        if (field_value(reader, f"{arch}.attention.key_length") is None
                and self.n_embd % self.n_head):
            raise ModelError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if not (1 <= self.head_k <= 4096 and 1 <= self.head_v <= 4096):
            raise ModelError(f"head sizes {self.head_k}/{self.head_v} out of range")
        self.n_rot = hp_int("rope.dimension_count", self.head_k)
        if self.n_rot % 2 or not 2 <= self.n_rot <= self.head_k:
            raise ModelError(f"rope.dimension_count {self.n_rot} invalid for head size {self.head_k}")
        if F.get("n_rot_is_head") and self.n_rot != self.head_k:
            raise ModelError(f"invalid n_rot {self.n_rot}, expected {self.head_k}")

        # RoPE
        self.rope_base = float(hp("rope.freq_base", 10000.0))
        stype = hp("rope.scaling.type", "linear", required=False)
        factor = hp("rope.scaling.factor", None, required=False)
        if factor is None:
            factor = hp("rope.scale_linear", None, required=False)
        factor = float(factor or 0.0)
        if stype == "yarn":
            raise ModelError("YaRN RoPE scaling is not implemented in the reference")
        if stype not in ("none", "linear", "longrope"):
            raise ModelError(f"rope.scaling.type {stype!r} not supported")
        self.freq_scale = 1.0 if (factor == 0.0 or stype == "none") else 1.0 / factor
        self.attn_factor = float(hp("rope.scaling.attn_factor", 1.0, required=False))
        self.n_ctx_orig = hp_int("rope.scaling.original_context_length",
                                 self.n_ctx_train, required=False)
        for v, what in ((self.rope_base, "rope.freq_base"), (self.freq_scale, "rope scale"),
                        (self.attn_factor, "rope.scaling.attn_factor")):
            if not (v > 0 and math.isfinite(v)):
                raise ModelError(f"{what} = {v} is not a positive number")

        # sliding window
        self.is_swa = [False] * self.n_layer
        self.n_swa = 0
        self.rope_base_swa = self.rope_base
        self.freq_scale_swa = 1.0
        swa = F["swa"]
        if swa is not None:
            w = field_value(reader, f"{arch}.attention.sliding_window")
            if w is None:
                w = swa["default_window"]
            if w is not None:
                w = int(w)
                if not 1 <= w < (1 << 31):
                    raise ModelError(f"{arch}.attention.sliding_window = {w} is absurd")
                self.n_swa = w
                pat = field_value(reader, f"{arch}.attention.sliding_window_pattern")
                if isinstance(pat, (list, tuple)):
                    if len(pat) != self.n_layer:
                        raise ModelError("sliding_window_pattern array length != block_count")
                    self.is_swa = [bool(b) for b in pat]
                else:
                    n = swa["pattern"] if pat is None else int(pat)
                    self.is_swa = [n == 0 or (il % n < n - 1) for il in range(self.n_layer)]
                if swa["base"] == "file":
                    self.rope_base_swa = self.rope_base
                    self.freq_scale_swa = self.freq_scale
                else:
                    self.rope_base_swa = float(swa["base"])
                b = field_value(reader, f"{arch}.rope.freq_base_swa")
                if b is not None:
                    self.rope_base_swa = float(b)
                if not (self.rope_base_swa > 0 and math.isfinite(self.rope_base_swa)):
                    raise ModelError(f"rope.freq_base_swa = {self.rope_base_swa} invalid")

        def softcap(spec, key):
            if spec is None:
                return None
            kind, default = spec
            v = field_value(reader, f"{arch}.{key}")
            if v is None:
                return default
            v = float(v)
            if kind == "optional" and v == 0.0:
                return None
            if not (v > 0 and math.isfinite(v)):
                raise ModelError(f"{arch}.{key} = {v} is not a positive number")
            return v
        self.attn_softcap = softcap(F["attn_softcap"], "attn_logit_softcapping")
        self.final_softcap = softcap(F["final_softcap"], "final_logit_softcapping")

        if F["big_n_layer"] is not None and self.n_layer == F["big_n_layer"]:
            self.attn_scale = 1.0 / math.sqrt(self.n_embd // self.n_head)
        else:
            self.attn_scale = 1.0 / math.sqrt(self.head_k)

        # vocabulary
        toks = field_value(reader, "tokenizer.ggml.tokens")
        self.tokens = [str(s) for s in toks] if toks is not None else None
        tt = field_value(reader, "tokenizer.ggml.token_type")
        self.token_types = [int(x) for x in tt] if tt is not None else None
        self.tok_model = field_value(reader, "tokenizer.ggml.model", "llama")
        self.add_space_prefix = bool(field_value(reader, "tokenizer.ggml.add_space_prefix",
                                                 self.tok_model == "llama"))
        self.bos = int(field_value(reader, "tokenizer.ggml.bos_token_id", 1))
        self.add_bos = bool(field_value(reader, "tokenizer.ggml.add_bos_token",
                                        self.tok_model == "llama"))
        self.eos = int(field_value(reader, "tokenizer.ggml.eos_token_id", 2))
        eot = field_value(reader, "tokenizer.ggml.eot_token_id")
        self.stop_ids = {self.eos} | ({int(eot)} if eot is not None else set())

        self._load_tensors(reader)

    # ------------------------------------------------------------------
    def _load_tensors(self, reader):
        F = self.fam
        by_name = {t.name: t for t in reader.tensors}
        used = set()
        E, H, HK, HV = self.n_embd, self.n_head, self.head_k, self.head_v
        q_dim, k_dim, v_dim = H * HK, self.n_head_kv * HK, self.n_head_kv * HV

        def get(name, shape, required=True, vector=False):
            t = by_name.get(name)
            if t is None:
                if required:
                    raise ModelError(f"missing tensor {name}")
                return None
            used.add(name)
            got = tuple(reversed([int(n) for n in t.shape]))
            if got != tuple(shape):
                raise ModelError(f"{name}: shape {got} (numpy order), expected {tuple(shape)}")
            if vector and t.tensor_type not in FLOAT_TYPES:
                raise ModelError(f"{name}: 1-D tensor stored as {t.tensor_type.name} "
                                 "(want F32/F16/BF16)")
            arr = dequant(t)
            if arr.size <= self.BIG:
                arr = arr.astype(np.float64)
            return arr

        self.tok_embd = get("token_embd.weight", (self._n_vocab(by_name), E))
        self.n_vocab = self.tok_embd.shape[0]
        self.out_norm = get("output_norm.weight", (E,), vector=True)
        if F["output"] == "tied":
            self.output = self.tok_embd
        else:
            self.output = get("output.weight", (self.n_vocab, E), required=False)
            if self.output is None:
                self.output = self.tok_embd
        self.output_b = (get("output.bias", (self.n_vocab,), required=False, vector=True)
                         if F.get("output_bias") else None)

        self.rope_ff = None            # llama rope_freqs
        self.rope_long = self.rope_short = None
        if F["rope_factors"] == "freqs":
            self.rope_ff = get("rope_freqs.weight", (self.n_rot // 2,), required=False, vector=True)
        elif F["rope_factors"] == "longrope":
            self.rope_long = get("rope_factors_long.weight", (self.n_rot // 2,),
                                 required=False, vector=True)
            self.rope_short = get("rope_factors_short.weight", (self.n_rot // 2,),
                                  required=False, vector=True)
            if (self.rope_long is None) != (self.rope_short is None):
                raise ModelError("only one of rope_factors_long/rope_factors_short present")
        for ff in (self.rope_ff, self.rope_long, self.rope_short):
            if ff is not None and not np.all(ff > 0):
                raise ModelError("RoPE frequency factors must be positive")

        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            L = {}
            L["attn_norm"] = get(p + "attn_norm.weight", (E,), vector=True)
            if p + "attn_qkv.weight" in by_name:
                qkv = get(p + "attn_qkv.weight", (q_dim + k_dim + v_dim, E))
                L["wq"], L["wk"], L["wv"] = (qkv[:q_dim], qkv[q_dim:q_dim + k_dim],
                                             qkv[q_dim + k_dim:])
                b = get(p + "attn_qkv.bias", (q_dim + k_dim + v_dim,), required=False, vector=True)
                if b is not None:
                    L["bq"], L["bk"], L["bv"] = b[:q_dim], b[q_dim:q_dim + k_dim], b[q_dim + k_dim:]
            else:
                L["wq"] = get(p + "attn_q.weight", (q_dim, E))
                L["wk"] = get(p + "attn_k.weight", (k_dim, E))
                L["wv"] = get(p + "attn_v.weight", (v_dim, E))
            if "bq" not in L:
                L["bq"] = get(p + "attn_q.bias", (q_dim,), required=False, vector=True)
                L["bk"] = get(p + "attn_k.bias", (k_dim,), required=False, vector=True)
                L["bv"] = get(p + "attn_v.bias", (v_dim,), required=False, vector=True)
            L["wo"] = get(p + "attn_output.weight", (E, H * HV))
            L["bo"] = get(p + "attn_output.bias", (E,), required=False, vector=True)
            if F["qk_norm"]:
                L["q_norm"] = get(p + "attn_q_norm.weight", (HK,), vector=True)
                L["k_norm"] = get(p + "attn_k_norm.weight", (HK,), vector=True)
            if F["post_norms"]:
                L["post_attn_norm"] = get(p + "post_attention_norm.weight", (E,), vector=True)
                L["post_ffn_norm"] = get(p + "post_ffw_norm.weight", (E,), vector=True)
            L["ffn_norm"] = get(p + "ffn_norm.weight", (E,), vector=True)
            if F["ffn"] == "fused":
                up = get(p + "ffn_up.weight", (2 * self.n_ff, E))
                L["w_gate"], L["w_up"] = up[:self.n_ff], up[self.n_ff:]
            else:
                L["w_gate"] = get(p + "ffn_gate.weight", (self.n_ff, E))
                L["w_up"] = get(p + "ffn_up.weight", (self.n_ff, E))
            L["w_down"] = get(p + "ffn_down.weight", (E, self.n_ff))
            self.layers.append(L)

        extra = sorted(set(by_name) - used)
        if extra:
            raise ModelError(f"{len(extra)} tensor(s) the {self.arch} graph does not use: "
                             + ", ".join(extra[:5]))

    def _n_vocab(self, by_name):
        t = by_name.get("token_embd.weight")
        if t is None:
            raise ModelError("missing tensor token_embd.weight")
        n = int(t.shape[1]) if len(t.shape) == 2 else -1
        if self.tokens is not None and n != len(self.tokens):
            raise ModelError(f"token_embd.weight has {n} rows, vocabulary {len(self.tokens)}")
        return n

    # ------------------------------------------------------------------
    def embed(self, ids):
        x = np.asarray(self.tok_embd[np.asarray(ids)], dtype=np.float64)
        if self.fam["embd_scale"]:
            x = x * math.sqrt(self.n_embd)
        return x

    def project(self, x):
        """x (T, E) float64 -> logits (T, n_vocab) float64, in row chunks."""
        W = self.output
        if W.dtype == np.float64:
            out = x @ W.T
        else:
            out = np.empty((x.shape[0], W.shape[0]))
            step = 1 << 15
            for r in range(0, W.shape[0], step):
                out[:, r:r + step] = x @ W[r:r + step].astype(np.float64).T
        if self.output_b is not None:
            out += self.output_b
        if self.final_softcap is not None:
            c = self.final_softcap
            out = c * np.tanh(out / c)
        return out

    def rope_factors(self, n_ctx):
        if self.rope_ff is not None:
            return self.rope_ff
        if self.rope_long is not None:
            return self.rope_long if n_ctx > self.n_ctx_orig else self.rope_short
        return None

    def describe(self):
        F = self.fam
        return "\n".join([
            f"arch {self.arch}: n_embd {self.n_embd}, n_layer {self.n_layer}, n_head "
            f"{self.n_head}/{self.n_head_kv} kv, head_k {self.head_k}, head_v {self.head_v}, "
            f"n_ff {self.n_ff}, n_vocab {self.n_vocab}, eps {self.eps:g}",
            f"rope {F['rope']}, n_rot {self.n_rot}, base {self.rope_base:g}, freq_scale "
            f"{self.freq_scale:g}, attn_factor {self.attn_factor:g}, rope_freqs "
            f"{self.rope_ff is not None}, longrope {self.rope_long is not None} "
            f"(orig ctx {self.n_ctx_orig})",
            f"swa window {self.n_swa}, local layers "
            f"{[i for i, s in enumerate(self.is_swa) if s]}, local base {self.rope_base_swa:g}",
            f"attn scale {self.attn_scale:.6g}, attn softcap {self.attn_softcap}, final "
            f"softcap {self.final_softcap}, tied output {self.output is self.tok_embd}",
        ])


# --------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------

LORA_TARGETS = {"attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
                "ffn_gate": "w_gate", "ffn_up": "w_up", "ffn_down": "w_down"}


def apply_lora(model, path, scale):
    """Merge a LoRA adapter (llama.cpp's LoRA GGUF layout, TECHNIQUES.md §4)
    into the model's float64 weights: W += scale * (alpha / r) * B @ A
    (scale * B @ A without adapter.lora.alpha), A (r, in) and B (out, r) in
    numpy order. Returns the number of adapted weights."""
    reader = GGUFReader(path)
    if field_value(reader, "general.type") != "adapter" or field_value(reader, "adapter.type") != "lora":
        raise ModelError(f"{path}: not a LoRA adapter")
    if field_value(reader, "general.architecture") != model.arch:
        raise ModelError(f"{path}: adapter for another architecture")
    alpha = field_value(reader, "adapter.lora.alpha", 0.0) or 0.0
    by_name = {t.name: t for t in reader.tensors}
    n = 0
    for name, t in by_name.items():
        if not name.endswith(".lora_a"):
            continue
        base = name[:-len(".lora_a")]
        parts = base.split(".")
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in LORA_TARGETS or parts[3] != "weight":
            raise ModelError(f"{path}: {name} does not adapt a projection")
        A = dequant(t).astype(np.float64)
        B = dequant(by_name[base + ".lora_b"]).astype(np.float64)
        r = A.shape[0]
        L = model.layers[int(parts[1])]
        key = LORA_TARGETS[parts[2]]
        if B.shape[1] != r or A.shape[1] != L[key].shape[1] or B.shape[0] != L[key].shape[0]:
            raise ModelError(f"{path}: {base} shapes do not match the base")
        s = scale * (alpha / r if alpha else 1.0)
        L[key] = L[key] + s * (B @ A)
        n += 1
    return n


def rmsnorm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, positions, n_rot, base, freq_scale, factors, attn_factor, style):
    """x: (T, heads, head_dim).  style 'norm': pairs (2k, 2k+1); 'neox':
    pairs (k, k + n_rot/2).  theta = p * base^(-2k/n_rot) / factors[k] *
    freq_scale; cos and sin scaled by attn_factor."""
    k = np.arange(n_rot // 2, dtype=np.float64)
    inv = base ** (-2.0 * k / n_rot)
    if factors is not None:
        inv = inv / factors
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv * freq_scale
    cos = (np.cos(ang) * attn_factor)[:, None, :]
    sin = (np.sin(ang) * attn_factor)[:, None, :]
    out = x.copy()
    if style == "norm":
        i0, i1 = slice(0, n_rot, 2), slice(1, n_rot, 2)
    else:
        i0, i1 = slice(0, n_rot // 2), slice(n_rot // 2, n_rot)
    x0, x1 = x[..., i0], x[..., i1]
    out[..., i0] = x0 * cos - x1 * sin
    out[..., i1] = x0 * sin + x1 * cos
    return out


def linear(h, w, b=None):
    y = h @ w.T
    return y if b is None else y + b


class Session:
    """KV cache; feed() appends tokens at positions n_past.. and returns
    their logits.  n_ctx: the context size that selects LongRoPE factors."""

    def __init__(self, model, n_ctx):
        self.m = model
        self.n_ctx = n_ctx
        self.ff = model.rope_factors(n_ctx)
        self.k_cache = [np.zeros((0, model.n_head_kv, model.head_k)) for _ in model.layers]
        self.v_cache = [np.zeros((0, model.n_head_kv, model.head_v)) for _ in model.layers]
        self.n_past = 0

    def feed(self, ids, rows=None):
        """rows: which of the T positions' logits to return (default all)."""
        m, F = self.m, self.m.fam
        T = len(ids)
        pos = np.arange(self.n_past, self.n_past + T)
        x = m.embed(ids)
        group = m.n_head // m.n_head_kv
        act = silu if F["act"] == "silu" else gelu_tanh
        for il, L in enumerate(m.layers):
            local = m.is_swa[il]
            base = m.rope_base_swa if local else m.rope_base
            fscale = m.freq_scale_swa if local else m.freq_scale
            h = rmsnorm(x, L["attn_norm"], m.eps)
            q = linear(h, L["wq"], L["bq"]).reshape(T, m.n_head, m.head_k)
            k = linear(h, L["wk"], L["bk"]).reshape(T, m.n_head_kv, m.head_k)
            v = linear(h, L["wv"], L["bv"]).reshape(T, m.n_head_kv, m.head_v)
            if F["qk_norm"]:
                q = rmsnorm(q, L["q_norm"], m.eps)
                k = rmsnorm(k, L["k_norm"], m.eps)
            q = rope(q, pos, m.n_rot, base, fscale, self.ff, m.attn_factor, F["rope"])
            k = rope(k, pos, m.n_rot, base, fscale, self.ff, m.attn_factor, F["rope"])
            K = self.k_cache[il] = np.concatenate([self.k_cache[il], k])
            V = self.v_cache[il] = np.concatenate([self.v_cache[il], v])
            kpos = np.arange(K.shape[0])
            visible = kpos[None, :] <= pos[:, None]
            if local:
                visible &= (pos[:, None] - kpos[None, :]) < m.n_swa
            attn = np.empty((T, m.n_head, m.head_v))
            for hq in range(m.n_head):
                hk = hq // group
                s = (q[:, hq, :] @ K[:, hk, :].T) * m.attn_scale
                if m.attn_softcap is not None:
                    s = m.attn_softcap * np.tanh(s / m.attn_softcap)
                s = np.where(visible, s, -np.inf)
                s -= s.max(axis=1, keepdims=True)
                pr = np.exp(s)
                pr /= pr.sum(axis=1, keepdims=True)
                attn[:, hq, :] = pr @ V[:, hk, :]
            o = linear(attn.reshape(T, -1), L["wo"], L["bo"])
            if F["post_norms"]:
                o = rmsnorm(o, L["post_attn_norm"], m.eps)
            x = x + o
            h = rmsnorm(x, L["ffn_norm"], m.eps)
            f = (act(h @ L["w_gate"].T) * (h @ L["w_up"].T)) @ L["w_down"].T
            if F["post_norms"]:
                f = rmsnorm(f, L["post_ffn_norm"], m.eps)
            x = x + f
        self.n_past += T
        if rows is not None:
            x = x[rows]
        return m.project(rmsnorm(x, m.out_norm, m.eps))


# --------------------------------------------------------------------------
# Decoding ids to text
# --------------------------------------------------------------------------

def _gpt2_byte_decoder():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def decode(model, ids, prev):
    if model.tokens is None:
        return b""
    out = bytearray()
    dec = _gpt2_byte_decoder() if model.tok_model == "gpt2" else None
    for t in ids:
        piece = model.tokens[t]
        ttype = model.token_types[t] if model.token_types else 1
        if ttype == 3:                                   # control
            pass
        elif dec is not None:
            if ttype == 4:                               # user-defined: as is
                out += piece.encode("utf-8")
            else:
                out += bytes(dec.get(c, 0x3f) for c in piece)
        elif ttype == 6 or (len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">")):
            out += bytes([int(piece[3:5], 16)])
        else:
            text = piece.replace("\u2581", " ")
            if prev == model.bos and model.add_space_prefix and text.startswith(" "):
                text = text[1:]
            out += text.encode("utf-8")
        prev = t
    return bytes(out)


# --------------------------------------------------------------------------
# Drivers
# --------------------------------------------------------------------------

def log_softmax_rows(logits):
    mx = logits.max(axis=1, keepdims=True)
    return logits - (mx + np.log(np.exp(logits - mx).sum(axis=1, keepdims=True)))


def greedy(model, prompt, n_gen, n_logit_steps, n_ctx):
    sess = Session(model, n_ctx)
    logits = sess.feed(prompt, rows=[-1])[0]
    generated, saved = [], []
    for step in range(n_gen):
        if step < n_logit_steps:
            saved.append(logits.copy())
        tok = int(np.argmax(logits))
        generated.append(tok)
        if tok in model.stop_ids:
            break
        if step + 1 < n_gen or step + 1 < n_logit_steps:
            logits = sess.feed([tok])[0]
    return generated, saved


def perplexity_chunks(model, tokens, n_ctx, max_chunks, rope_ctx):
    n_chunk = len(tokens) // n_ctx
    if max_chunks is not None:
        n_chunk = min(n_chunk, max_chunks)
    if n_chunk < 1:
        raise ModelError(f"{len(tokens)} tokens: fewer than one chunk of {n_ctx}")
    total = total2 = 0.0
    count = 0
    first = n_ctx // 2
    for c in range(n_chunk):
        start = c * n_ctx
        batch = list(tokens[start:start + n_ctx])
        if model.add_bos:           # perplexity.cpp: only when the vocab adds BOS
            batch[0] = model.bos
        logits = Session(model, rope_ctx or n_ctx).feed(batch, rows=slice(first, n_ctx - 1))
        targets = np.asarray(tokens[start + first + 1:start + n_ctx])
        nll = -log_softmax_rows(logits)[np.arange(len(targets)), targets]
        total += float(np.sum(nll))
        total2 += float(np.sum(nll * nll))
        count += len(nll)
        print(f"[{c + 1}] {math.exp(total / count):.4f}", file=sys.stderr)
    mean = total / count
    ppl = math.exp(mean)
    var = total2 / count - mean * mean
    err = ppl * math.sqrt(var / (count - 1)) if var > 0 and count > 1 else 0.0
    print(f"ref: {len(tokens)} tokens, ctx {n_ctx}, {n_chunk} chunks, {count} scored",
          file=sys.stderr)
    return ppl, err


def read_ids(path):
    with open(path) as f:
        return [int(s) for s in f.read().split()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--greedy", type=int, metavar="N")
    ap.add_argument("--out-tokens")
    ap.add_argument("--out-logits")
    ap.add_argument("--logit-steps", type=int, default=8, metavar="K")
    ap.add_argument("--prompt-ids", default=None, help='space-separated ids (default: BOS)')
    ap.add_argument("--out-text", default=None)
    ap.add_argument("--ppl-ids", default=None, metavar="FILE",
                    help="chunked perplexity of these ids (BOS first)")
    ap.add_argument("--ctx", type=int, default=None, metavar="N", help="perplexity chunk size")
    ap.add_argument("--max-chunks", type=int, default=None, metavar="K")
    ap.add_argument("--rope-ctx", type=int, default=None, metavar="N",
                    help="context size that selects LongRoPE long/short factors "
                         "(default: the sequence length)")
    ap.add_argument("--no-self-check", action="store_true",
                    help="skip the full-sequence vs incremental logits check")
    ap.add_argument("--info", action="store_true", help="print the hyperparameters and exit")
    ap.add_argument("--lora", default=None, metavar="FILE", help="merge a LoRA adapter first")
    ap.add_argument("--lora-scale", type=float, default=1.0, metavar="S")
    args = ap.parse_args(argv)

    try:
        model = Model(args.model)
        if args.lora:
            n_adapted = apply_lora(model, args.lora, args.lora_scale)
            print(f"adapter {args.lora}: {n_adapted} weights adapted", file=sys.stderr)
    except ModelError as e:
        print(f"model_ref: {args.model}: {e}", file=sys.stderr)
        return 1
    print(model.describe(), file=sys.stderr)
    if args.info:
        return 0

    if args.ppl_ids is not None:
        if args.ctx is None or args.ctx < 4:
            ap.error("--ppl-ids needs --ctx N (N >= 4)")
        tokens = read_ids(args.ppl_ids)
        bad = [t for t in tokens if not 0 <= t < model.n_vocab]
        if bad:
            ap.error(f"token id {bad[0]} out of range (vocab {model.n_vocab})")
        try:
            ppl, err = perplexity_chunks(model, tokens, args.ctx, args.max_chunks, args.rope_ctx)
        except ModelError as e:
            print(f"model_ref: {e}", file=sys.stderr)
            return 1
        print(f"PPL = {ppl:.4f} +/- {err:.5f}")
        if args.greedy is None:
            return 0

    if args.greedy is None or not args.out_tokens or not args.out_logits:
        ap.error("need --greedy N --out-tokens FILE --out-logits FILE (or --ppl-ids/--info)")
    prompt = [int(s) for s in args.prompt_ids.split()] if args.prompt_ids else [model.bos]
    for t in prompt:
        if not 0 <= t < model.n_vocab:
            ap.error(f"prompt id {t} out of range (vocab {model.n_vocab})")
    n_ctx = args.rope_ctx or (len(prompt) + args.greedy)
    gen, saved = greedy(model, prompt, args.greedy, args.logit_steps, n_ctx)

    with open(args.out_tokens, "w") as f:
        f.write(" ".join(str(t) for t in gen) + "\n")
    with open(args.out_logits, "w") as f:
        for row in saved:
            f.write(" ".join("%.9g" % v for v in row) + "\n")
    if args.out_text:
        with open(args.out_text, "wb") as f:
            f.write(decode(model, gen, prompt[-1]))

    print(f"prompt: {prompt} -> {decode(model, prompt, None)!r}", file=sys.stderr)
    print(f"generated {len(gen)} tokens, stop hit={bool(gen) and gen[-1] in model.stop_ids}: "
          f"{decode(model, gen, prompt[-1])!r}", file=sys.stderr)
    if not args.no_self_check and gen:
        seq = prompt + gen
        full = Session(model, n_ctx).feed(seq[:-1])
        off = len(prompt) - 1
        scale = max(1.0, float(np.abs(full).max()))
        for i, row in enumerate(saved):
            err = float(np.max(np.abs(full[off + i] - row)))
            assert err < 1e-9 * scale, f"incremental vs full logits differ at step {i}: {err}"
        lp = log_softmax_rows(full)
        nll = -lp[np.arange(len(seq) - 1), seq[1:]]
        print(f"self-check ok; perplexity of prompt[1:] + generated: "
              f"{math.exp(nll.mean()):.6f}; of generated only: "
              f"{math.exp(nll[off:].mean()):.6f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
