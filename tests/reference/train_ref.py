#!/usr/bin/env python3
"""Independent float64 PyTorch-autograd reference for the gradients of
Ancora's training (`ancora train`: LoRA, LoRA+, S2-Attn, full fine-tuning).

It computes one training step's loss and d(loss)/d(parameter) for every
trainable parameter, by writing the forward pass of a `llama`-architecture
GGUF model in torch (torch.float64 throughout) and calling backward():
there is no hand-derived backward formula anywhere here, and no code shared
with Ancora.  The file is read with the PyPI `gguf` package (GGUFReader) and
dequantised by model_ref.py's dequant() (gguf.quants.dequantize); the
hyperparameters and the model's validation come from model_ref.Model, whose
NumPy forward (model_ref.Session) is also the self-check's oracle.

usage:
    train_ref.py BASE.gguf --ids IDS.txt [--adapter ADAPTER.gguf]
                 [--lora-scale S] [--rope-linear F] [--s2-group G]
                 [--lora-plus] [--full] [--fd-check] [--no-self-check]
                 [--seed N] [--threads N] -o GRADS.gguf

Loss.  IDS.txt holds T+1 whitespace-separated token ids.  loss = mean over
i in [0, T) of -log softmax(logits_i)[ids[i+1]], logits_i being the model's
output at position i having seen ids[0..i]; positions are 0..T-1.  No BOS is
added or substituted: the ids are used as given.

Forward (the llama conventions of model_ref.py, themselves checked against
llama.cpp; each one is re-checked here by the self-check):
  x = token_embd[ids]                       (no embedding scale)
  per layer N:
    h = rmsnorm(x) * attn_norm,  rmsnorm(x) = x / sqrt(mean(x^2) + eps),
        eps = llama.attention.layer_norm_rms_epsilon AS STORED (a float32
        key: stories260K's 1e-5 is 9.999999747378752e-06 in float64)
    q = Wq h (+bq), k = Wk h (+bk), v = Wv h (+bv)   (biases if present)
    RoPE on q and k, per head, ADJACENT pairs (2k, 2k+1), k < n_rot/2
        (llama.rope.dimension_count; dims past n_rot pass through):
        theta_k = p * base^(-2k/n_rot) / ff[k] * freq_scale,
        (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos), cos and sin times
        attn_factor (llama.rope.scaling.attn_factor, default 1);
        base = llama.rope.freq_base (default 10000); ff = rope_freqs.weight
        if the file has it (Llama 3.1), else 1; freq_scale = 1/F with
        --rope-linear F, else the file's (1/llama.rope.scaling.factor, 1
        when absent - stories260K: 1).
    GQA: query head j uses kv head j // (n_head / n_head_kv)
    scores = q.k / sqrt(head_dim), masked (below), softmax over keys,
    o = Wo concat(heads) (+bo);  x = x + o
    h = rmsnorm(x) * ffn_norm;  x = x + Wdown(silu(Wgate h) * Wup h),
        silu(z) = z / (1 + exp(-z))
  logits = Wout (rmsnorm(x) * output_norm), Wout = output.weight, or
    token_embd.weight when the file has no output.weight (tied).

Mask.  Without --s2-group (or G = 0): causal, query i sees key p iff p <= i.
With --s2-group G (shifted sparse attention, TECHNIQUES.md section 4, the
fixed variant WITHOUT wrap-around): query heads j < n_head // 2 use groups
[0,G), [G,2G), ... (group of position p: p // G); heads j >= n_head // 2 use
groups [0,G/2), [G/2,3G/2), ..., [T-G/2,T) (group: (p + G/2) // G).  Query i
sees key p iff p <= i and both are in the same group of that head's half.
T % G == 0 and G even are required (else exit 2).  The mask is also built a
second way, LongLoRA's roll by -G/2 with the wrapped pairs removed, and the
two must be equal.

LoRA (--adapter, llama.cpp's LoRA GGUF layout, TECHNIQUES.md section 4;
written by write_lora.py, merged by model_ref.apply_lora): for a weight W
named blk.N.X.weight (X in attn_q, attn_k, attn_v, attn_output, ffn_gate,
ffn_up, ffn_down) the tensors blk.N.X.weight.lora_a (GGUF ne = [in, r],
numpy (r, in) = A) and blk.N.X.weight.lora_b (ne = [r, out], numpy
(out, r) = B); the projection becomes
    W h + S * (alpha / r) * B (A h),   S = --lora-scale (default 1),
alpha = adapter.lora.alpha; when that key is absent or 0 the factor is S
alone (as llama.cpp and model_ref.apply_lora).  A and B are trainable.

Trainable parameters (each gets a gradient tensor of the same name):
  --adapter      every lora_a and lora_b of the adapter
  --lora-plus    also token_embd.weight and every norm weight
                 (blk.N.attn_norm.weight, blk.N.ffn_norm.weight,
                 output_norm.weight); output.weight stays frozen.  If the
                 file has NO output.weight (tied), the output matrix IS
                 token_embd.weight, the same tensor: its gradient is the
                 sum of the embedding-lookup and the output-projection
                 contributions.
  --full         every tensor of the base (and the adapter's, if given),
                 except rope_freqs.weight (a RoPE constant, not a weight).
                 Tied files: token_embd.weight's gradient again includes
                 both uses; there is no output.weight gradient.
With none of these there is nothing to train: exit 2.

Output GRADS.gguf (gguf.GGUFWriter; general.architecture = the base's):
  train_ref.loss        FLOAT32  the mean loss
  train_ref.loss_f64    STRING   repr() of the float64 mean loss
  train_ref.n_tokens    UINT32   T
  train_ref.nll         FLOAT32 array [T], the per-position losses
  train_ref.lora_scale, train_ref.rope_freq_scale FLOAT32,
  train_ref.s2_group    UINT32 (0 = full causal attention),
  train_ref.mode        STRING  "lora", "lora+", "full" or "full+lora"
  one F32 tensor per trainable parameter, named exactly as the parameter
  (blk.0.attn_q.weight.lora_a, token_embd.weight, ...), with the
  parameter's own GGUF shape (a lora_a gradient has ne = [in, r]), holding
  d(loss)/d(param) computed in float64 and rounded to float32.  Tensors in
  order: the adapter's tensors in the adapter file's order, then the
  base's in the base file's order.

Self-checks.  Unless --no-self-check: the torch forward's logits (full
causal attention, adapter merged by model_ref.apply_lora into the NumPy
model) must equal model_ref.Session's NumPy logits at every position to
1e-6 relative (max |diff| / max |logit|); with --s2-group the S2 forward
must equal the causal one at positions < G/2 (where the masks coincide) and
differ after; the two S2 mask constructions must agree.  --fd-check: 3
gradient entries (seeded by --seed, of 3 different parameters when there
are, each among the entries with |g| >= 0.1 max |g| of its parameter)
against a float64 central difference (h = 1e-5), to 1e-5 relative; with a
tied output and a trainable token_embd.weight a 4th entry, in the embedding
row of an input token (both uses contribute there).  A
failed check prints "SELF-CHECK FAILED" and exits 1.

Determinism: torch.use_deterministic_algorithms(True) and --threads 1 by
default (matrix products summed in one thread's fixed order).

Dependency: torch from Debian's python3-torch (apt; 1.13 on Debian 12),
installed by scripts/install-deps.  The reference venv .venv-ref is created
with --system-site-packages, so `tests/ref_python.sh`'s $py sees it; for a
Python that does not (e.g. a venv made without that flag, or
$ANC_REF_PYTHON), this script appends /usr/lib/python3/dist-packages to
sys.path (after the venv's own packages, so its numpy and gguf still win)
and retries the torch import.  No torch at all: a message and exit 77 (the
automake SKIP status), so a test can pass it through.  Usage from a test:
    . "$SRC/tests/ref_python.sh"
    "$py" "$SRC/tests/reference/train_ref.py" BASE.gguf --ids IDS -o OUT
Self-test (not in `make check`): tests/reference/test_train_ref.sh.
"""

import argparse
import math
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref  # noqa: E402  (hyperparameters, dequant, NumPy oracle)


def import_torch():
    try:
        import torch
        return torch
    except ImportError:
        pass
    d = "/usr/lib/python3/dist-packages"
    if os.path.isdir(os.path.join(d, "torch")) and d not in sys.path:
        sys.path.append(d)
        try:
            import torch
            return torch
        except ImportError as e:
            print(f"train_ref: torch found in {d} but not importable by "
                  f"{sys.executable}: {e}", file=sys.stderr)
    print("train_ref: SKIP: PyTorch is not available (Debian: apt-get install "
          "python3-torch; scripts/install-deps does it)", file=sys.stderr)
    sys.exit(77)


torch = import_torch()
DT = torch.float64

LORA_TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def load_base(path):
    """-> (model_ref.Model, [(name, float64 numpy array)] in file order)."""
    model = model_ref.Model(path)          # validates, raises ModelError
    if model.arch != "llama":
        raise model_ref.ModelError(f"architecture {model.arch!r}: train_ref handles llama only")
    reader = GGUFReader(path)
    tensors = []
    for t in reader.tensors:
        if t.name.endswith("attn_qkv.weight") or t.name.endswith("attn_qkv.bias"):
            raise model_ref.ModelError(f"{t.name}: fused QKV is not handled by train_ref")
        tensors.append((t.name, model_ref.dequant(t).astype(np.float64)))
    return model, tensors


def load_adapter(path, model, base_shapes):
    """-> (alpha or 0.0, [(name, float64 array)] in file order, {target: rank})."""
    reader = GGUFReader(path)
    fv = lambda k, d=None: model_ref.field_value(reader, k, d)
    if fv("general.type") != "adapter" or fv("adapter.type") != "lora":
        raise model_ref.ModelError(f"{path}: not a LoRA adapter")
    if fv("general.architecture") != model.arch:
        raise model_ref.ModelError(f"{path}: adapter for another architecture")
    alpha = float(fv("adapter.lora.alpha", 0.0) or 0.0)
    tensors = [(t.name, model_ref.dequant(t).astype(np.float64)) for t in reader.tensors]
    by = dict(tensors)
    ranks = {}
    for name, arr in tensors:
        if name.endswith(".lora_a"):
            base, other = name[:-len(".lora_a")], name[:-len(".lora_a")] + ".lora_b"
        elif name.endswith(".lora_b"):
            base, other = name[:-len(".lora_b")], name[:-len(".lora_b")] + ".lora_a"
        else:
            raise model_ref.ModelError(f"{path}: unexpected tensor {name}")
        parts = base.split(".")
        if (len(parts) != 4 or parts[0] != "blk" or parts[2] not in LORA_TARGETS
                or parts[3] != "weight" or base not in base_shapes):
            raise model_ref.ModelError(f"{path}: {name} does not adapt a projection of the base")
        if other not in by:
            raise model_ref.ModelError(f"{path}: {name} without {other}")
        if name.endswith(".lora_a"):
            A, B = arr, by[other]
            out, inp = base_shapes[base]
            r = A.shape[0]
            if A.ndim != 2 or B.ndim != 2 or A.shape[1] != inp or B.shape != (out, r):
                raise model_ref.ModelError(f"{path}: {base} shapes A {A.shape} B {B.shape} "
                                           f"do not match the base ({out}, {inp})")
            ranks[base] = r
    return alpha, tensors, ranks


# --------------------------------------------------------------------------
# Attention masks
# --------------------------------------------------------------------------

def s2_masks(T, G):
    """(unshifted, shifted) boolean [query, key] masks, by group ids."""
    p = np.arange(T)
    causal = p[None, :] <= p[:, None]
    g0 = p // G
    g1 = (p + G // 2) // G
    return (causal & (g0[:, None] == g0[None, :]),
            causal & (g1[:, None] == g1[None, :]))


def s2_shifted_by_roll(T, G):
    """The shifted half's mask built as LongLoRA does it, by rolling the
    sequence by -G/2 (new index n holds old token (n + G/2) mod T), grouping
    new indices by n // G, causal in the new order - and, to remove the
    wrap-around leak, also causal in the old order (a wrapped token of the
    last rolled group then sees only wrapped tokens, an unwrapped one only
    unwrapped ones)."""
    old = np.arange(T)
    new = (old - G // 2) % T
    grp = new // G
    return ((grp[:, None] == grp[None, :]) & (new[None, :] <= new[:, None])
            & (old[None, :] <= old[:, None]))


def s2_unshifted_by_blocks(T, G):
    """The unshifted half as lower-triangular G x G blocks on the diagonal."""
    m = np.zeros((T, T), dtype=bool)
    for s in range(0, T, G):
        m[s:s + G, s:s + G] = np.tril(np.ones((G, G), dtype=bool))
    return m


def build_mask(T, n_head, G):
    """[n_head, T, T] boolean torch mask (True = visible)."""
    p = np.arange(T)
    if not G:
        m = np.broadcast_to(p[None, :] <= p[:, None], (n_head, T, T))
    else:
        m0, m1 = s2_masks(T, G)
        m = np.stack([m0 if j < n_head // 2 else m1 for j in range(n_head)])
    return torch.from_numpy(np.ascontiguousarray(m))


# --------------------------------------------------------------------------
# Forward pass (torch, float64)
# --------------------------------------------------------------------------

class Net:
    def __init__(self, model, params, lora, lora_factor, freq_scale):
        """params: name -> float64 torch tensor (base and adapter tensors);
        lora: weight name -> (lora_a name, lora_b name, rank)."""
        self.m = model
        self.P = params
        self.lora = lora
        self.lora_factor = lora_factor       # S * alpha / r, or S, per weight
        self.freq_scale = freq_scale
        m = model
        k = torch.arange(m.n_rot // 2, dtype=DT)
        inv = m.rope_base ** (-2.0 * k / m.n_rot)
        if "rope_freqs.weight" in params:
            inv = inv / params["rope_freqs.weight"].detach()
        self.inv_freq = inv * freq_scale

    def proj(self, h, wname, bname=None):
        P = self.P
        y = h @ P[wname].T
        if bname is not None and bname in P:
            y = y + P[bname]
        if wname in self.lora:
            a, b, _ = self.lora[wname]
            y = y + self.lora_factor[wname] * ((h @ P[a].T) @ P[b].T)
        return y

    def rmsnorm(self, x, w):
        return x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.m.eps) * w

    def rope(self, x, pos):
        """x [T, heads, D]: adjacent pairs (2k, 2k+1) of the first n_rot dims."""
        n_rot = self.m.n_rot
        ang = pos.to(DT)[:, None] * self.inv_freq[None, :]          # [T, n_rot/2]
        cos = (torch.cos(ang) * self.m.attn_factor)[:, None, :]
        sin = (torch.sin(ang) * self.m.attn_factor)[:, None, :]
        x0 = x[..., 0:n_rot:2]
        x1 = x[..., 1:n_rot:2]
        r0 = x0 * cos - x1 * sin
        r1 = x0 * sin + x1 * cos
        rot = torch.stack([r0, r1], dim=-1).reshape(x.shape[0], x.shape[1], n_rot)
        return torch.cat([rot, x[..., n_rot:]], dim=-1)

    def logits(self, ids, mask):
        """ids: LongTensor [T]; mask [n_head, T, T] bool -> logits [T, vocab]."""
        m, P = self.m, self.P
        T = ids.shape[0]
        pos = torch.arange(T)
        H, HKV, HK, HV = m.n_head, m.n_head_kv, m.head_k, m.head_v
        kv_of = torch.arange(H) // (H // HKV)
        x = P["token_embd.weight"][ids]
        for il in range(m.n_layer):
            b = f"blk.{il}."
            h = self.rmsnorm(x, P[b + "attn_norm.weight"])
            q = self.proj(h, b + "attn_q.weight", b + "attn_q.bias").reshape(T, H, HK)
            k = self.proj(h, b + "attn_k.weight", b + "attn_k.bias").reshape(T, HKV, HK)
            v = self.proj(h, b + "attn_v.weight", b + "attn_v.bias").reshape(T, HKV, HV)
            q = self.rope(q, pos)
            k = self.rope(k, pos)
            qh = q.permute(1, 0, 2)                    # [H, T, HK]
            kh = k.permute(1, 0, 2)[kv_of]             # [H, T, HK]
            vh = v.permute(1, 0, 2)[kv_of]             # [H, T, HV]
            s = (qh @ kh.transpose(1, 2)) * m.attn_scale
            s = s.masked_fill(~mask, float("-inf"))
            pr = torch.softmax(s, dim=-1)
            o = (pr @ vh).permute(1, 0, 2).reshape(T, H * HV)
            x = x + self.proj(o, b + "attn_output.weight", b + "attn_output.bias")
            h = self.rmsnorm(x, P[b + "ffn_norm.weight"])
            g = self.proj(h, b + "ffn_gate.weight")
            u = self.proj(h, b + "ffn_up.weight")
            x = x + self.proj(g / (1.0 + torch.exp(-g)) * u, b + "ffn_down.weight")
        wout = P["output.weight"] if "output.weight" in P else P["token_embd.weight"]
        return self.rmsnorm(x, P["output_norm.weight"]) @ wout.T

    def nll(self, ids, mask):
        """per-position -log p(ids[i+1] | ids[0..i]), [T]."""
        lg = self.logits(ids[:-1], mask)
        lp = torch.log_softmax(lg, dim=-1)
        return -lp.gather(1, ids[1:, None])[:, 0]


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def fail(msg):
    print(f"train_ref: SELF-CHECK FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def self_check(net, args, ids, T, G):
    m = net.m
    # NumPy oracle: a fresh model_ref.Model with the adapter merged.
    ref = model_ref.Model(args.base)
    ref.freq_scale = net.freq_scale
    if args.adapter:
        model_ref.apply_lora(ref, args.adapter, args.lora_scale)
    want = model_ref.Session(ref, T).feed(list(ids[:T]))
    with torch.no_grad():
        causal = build_mask(T, m.n_head, 0)
        got = net.logits(torch.tensor(ids[:T]), causal).numpy()
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    print(f"self-check: torch vs model_ref NumPy logits, {T} positions: "
          f"max rel diff {rel:.3g}", file=sys.stderr)
    if not rel < 1e-6:
        fail(f"torch logits differ from model_ref's by {rel:.3g} relative (limit 1e-6)")
    if G:
        m0, m1 = s2_masks(T, G)
        if not np.array_equal(m1, s2_shifted_by_roll(T, G)):
            fail("the S2 shifted mask differs from the roll-based construction")
        if not np.array_equal(m0, s2_unshifted_by_blocks(T, G)):
            fail("the S2 unshifted mask differs from the block construction")
        with torch.no_grad():
            s2 = net.logits(torch.tensor(ids[:T]), build_mask(T, m.n_head, G)).numpy()
        d = np.abs(s2 - got).max(axis=1) / np.abs(got).max()
        same = float(d[:G // 2].max())
        after = float(d[G // 2:].min()) if T > G // 2 else float("inf")
        print(f"self-check: S2 vs causal logits: max rel diff {same:.3g} at positions "
              f"< {G // 2}, min {after:.3g} after", file=sys.stderr)
        if not same < 1e-12:
            fail(f"S2 logits differ from causal ones before position G/2 ({same:.3g})")
        if T > G // 2 and not after > 1e-9:
            fail("S2 logits equal causal ones at some position >= G/2: the mask had no effect")



def fd_check(net, params, trainable, grads, ids, mask, seed):
    rng = np.random.default_rng(seed)
    zero = [n for n in trainable if not np.any(grads[n])]
    if zero:
        print(f"fd-check: {len(zero)} parameter(s) with an all-zero gradient left out "
              f"(e.g. {zero[0]}; lora_a is exactly 0 when B = 0)", file=sys.stderr)
        trainable = [n for n in trainable if n not in zero]
        if not trainable:
            fail("every gradient is zero")
    kinds = {}
    for n in trainable:
        kind = ("lora_a" if n.endswith(".lora_a") else "lora_b" if n.endswith(".lora_b")
                else "norm" if n.endswith("norm.weight") else "matrix")
        kinds.setdefault(kind, []).append(n)
    order = [kinds[k] for k in sorted(kinds)]
    chosen = []
    for i in range(3):                     # one per kind, round robin, distinct names
        pool = [n for n in order[i % len(order)] if n not in chosen] or \
               [n for n in trainable if n not in chosen] or list(trainable)
        chosen.append(pool[int(rng.integers(len(pool)))])
    picks = []
    for name in chosen:
        g = grads[name]
        big = np.flatnonzero(np.abs(g).ravel() >= 0.1 * np.abs(g).max())
        if big.size == 0:
            fail(f"{name}: gradient is all zero")
        picks.append((name, np.unravel_index(int(big[int(rng.integers(big.size))]), g.shape)))
    if "output.weight" not in params and "token_embd.weight" in trainable:
        # tied: a 4th entry in the embedding row of an input token, where
        # the lookup's and the output projection's gradients both land
        row = int(ids[int(rng.integers(ids.shape[0] - 1))])
        g = grads["token_embd.weight"][row]
        picks.append(("token_embd.weight", (row, int(np.argmax(np.abs(g))))))
    h = 1e-5
    worst = 0.0
    for name, idx in picks:
        g = grads[name]
        p = params[name]
        with torch.no_grad():
            v0 = p[idx].item()
            p[idx] = v0 + h
            lp = net.nll(ids, mask).mean().item()
            p[idx] = v0 - h
            lm = net.nll(ids, mask).mean().item()
            p[idx] = v0
        fd = (lp - lm) / (2 * h)
        an = float(g[idx])
        rel = abs(fd - an) / max(abs(an), abs(fd))
        worst = max(worst, rel)
        print(f"fd-check: {name}{list(int(i) for i in idx)}: autograd {an:.12g}, "
              f"central difference {fd:.12g}, rel {rel:.3g}", file=sys.stderr)
        if not rel < 1e-5:
            fail(f"{name}{idx}: autograd {an} vs finite difference {fd} (rel {rel:.3g})")
    return worst


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", metavar="BASE.gguf")
    ap.add_argument("--ids", required=True, metavar="IDS.txt", help="T+1 token ids")
    ap.add_argument("--adapter", default=None, metavar="ADAPTER.gguf")
    ap.add_argument("--lora-scale", type=float, default=1.0, metavar="S")
    ap.add_argument("--rope-linear", type=float, default=None, metavar="F",
                    help="freq_scale = 1/F (default: the file's scaling, 1 if none)")
    ap.add_argument("--s2-group", type=int, default=0, metavar="G")
    ap.add_argument("--lora-plus", action="store_true")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--fd-check", action="store_true")
    ap.add_argument("--no-self-check", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help="fd-check's entry choice")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", dest="out", required=True, metavar="GRADS.gguf")
    args = ap.parse_args(argv)

    torch.set_num_threads(max(1, args.threads))
    torch.use_deterministic_algorithms(True)

    def usage(msg):
        print(f"train_ref: {msg}", file=sys.stderr)
        sys.exit(2)

    try:
        with open(args.ids) as f:
            ids = [int(s) for s in f.read().split()]
    except (OSError, ValueError) as e:
        usage(f"{args.ids}: {e}")
    T = len(ids) - 1
    if T < 1:
        usage(f"{args.ids}: need at least 2 ids (T+1), got {len(ids)}")
    G = args.s2_group
    if G < 0 or (G and (G % 2 or T % G)):
        usage(f"--s2-group {G}: needs G even and T = {T} a multiple of G")
    if args.rope_linear is not None and not (args.rope_linear > 0 and math.isfinite(args.rope_linear)):
        usage(f"--rope-linear {args.rope_linear}: must be a positive number")
    if not math.isfinite(args.lora_scale):
        usage("--lora-scale must be finite")
    if not (args.adapter or args.lora_plus or args.full):
        usage("nothing to train: give --adapter, --lora-plus or --full")

    try:
        model, base_tensors = load_base(args.base)
        base_shapes = {n: a.shape for n, a in base_tensors}
        adapter_tensors, lora, lora_factor = [], {}, {}
        if args.adapter:
            alpha, adapter_tensors, ranks = load_adapter(args.adapter, model, base_shapes)
            for w, r in ranks.items():
                lora[w] = (w + ".lora_a", w + ".lora_b", r)
                lora_factor[w] = args.lora_scale * (alpha / r if alpha else 1.0)
    except model_ref.ModelError as e:
        print(f"train_ref: {e}", file=sys.stderr)
        return 1
    bad = [t for t in ids if not 0 <= t < model.n_vocab]
    if bad:
        usage(f"token id {bad[0]} out of range (vocabulary {model.n_vocab})")
    freq_scale = 1.0 / args.rope_linear if args.rope_linear is not None else model.freq_scale

    params = {n: torch.from_numpy(a.copy()) for n, a in base_tensors + adapter_tensors}
    trainable = []
    for n, _ in adapter_tensors:
        trainable.append(n)
    for n, _ in base_tensors:
        if args.full:
            if n != "rope_freqs.weight":
                trainable.append(n)
        elif args.lora_plus:
            if n == "token_embd.weight" or n.endswith("norm.weight"):
                trainable.append(n)
    for n in trainable:
        params[n].requires_grad_(True)
    tied = "output.weight" not in params
    mode = ("full+lora" if args.adapter else "full") if args.full else \
           ("lora+" if args.lora_plus else "lora")
    print(f"train_ref: {args.base}: T = {T}, mode {mode}, {len(lora)} adapted weights, "
          f"{len(trainable)} trainable tensors ({sum(params[n].numel() for n in trainable)} "
          f"values), tied output {tied}, s2 group {G}, freq_scale {freq_scale:g}, "
          f"eps {model.eps!r}", file=sys.stderr)

    net = Net(model, params, lora, lora_factor, freq_scale)
    if not args.no_self_check:
        self_check(net, args, ids, T, G)

    tids = torch.tensor(ids)
    mask = build_mask(T, model.n_head, G)
    nll = net.nll(tids, mask)
    loss = nll.mean()
    loss.backward()
    grads = {n: params[n].grad.detach().numpy().copy() for n in trainable}
    for n, g in grads.items():
        if not np.all(np.isfinite(g)):
            fail(f"{n}: non-finite gradient")
    lossv = float(loss.item())
    print(f"loss = {lossv!r}")

    if args.fd_check:
        for n in trainable:
            params[n].requires_grad_(False)
        worst = fd_check(net, params, trainable, grads, tids, mask, args.seed)
        print(f"fd-check ok (worst rel {worst:.3g})", file=sys.stderr)

    w = GGUFWriter(args.out, model.arch)
    w.add_float32("train_ref.loss", lossv)
    w.add_string("train_ref.loss_f64", repr(lossv))
    w.add_uint32("train_ref.n_tokens", T)
    w.add_array("train_ref.nll", [float(v) for v in nll.detach().numpy()])
    w.add_float32("train_ref.lora_scale", args.lora_scale)
    w.add_float32("train_ref.rope_freq_scale", freq_scale)
    w.add_uint32("train_ref.s2_group", G)
    w.add_string("train_ref.mode", mode)
    for n in trainable:
        w.add_tensor(n, grads[n].astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"train_ref: wrote {len(trainable)} gradients to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
