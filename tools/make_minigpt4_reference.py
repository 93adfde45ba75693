#!/usr/bin/python3
"""Make the tiny MiniGPT-4 checkpoint and PyTorch reference logits used by FedNano.Tests.

Writes FedNano.Tests/Fixtures/minigpt4-reference/:
  minigpt4-tiny/blip2/           a BLIP-2 checkpoint as transformers saves Blip2ForConditionalGeneration: config.json
                                 (model_type blip-2, vision_config, qformer_config, an OPT text_config),
                                 preprocessor_config.json, 2 float32 shards + model.safetensors.index.json with
                                 vision_model.*, qformer.*, query_tokens, and keys MiniGPT-4 does not use (BLIP-2's own
                                 language_projection and language_model, a Q-Former text-side FFN)
  minigpt4-tiny/vicuna/          a LLaMA checkpoint (LlamaForCausalLM): config.json, model.safetensors in float16
  minigpt4-tiny/projection.safetensors
                                 language_projection.{weight,bias}, written by tools/convert_minigpt4_projection.py
                                 from a MiniGPT-4-style .pth (model dict with llama_proj.*) made here in a temp folder
  reference.safetensors          pixel_values of two images, the tower's output (image_embeds), the Q-Former's
                                 (query_output), the projected visual tokens (image_tokens), token ids before and after
                                 the image, and the logits at every position of the first image's sequence
                                 [BOS] + before + visual tokens + after, computed in float64

Weights are rounded so that they are exact in float16 and bfloat16 (every piece holds the values the reference used).
The math follows Hugging Face transformers' modeling_blip_2.py (Blip2VisionModel, Blip2QFormerModel,
Blip2ForConditionalGeneration's language_projection) and modeling_llama.py line by line; no transformers package.
Run with Debian's python3-torch:  /usr/bin/python3 tools/make_minigpt4_reference.py
"""
import json
import math
import os
import shutil
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_minigpt4_projection import convert, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "FedNano.Tests", "Fixtures", "minigpt4-reference")

# three different widths (vision 16, Q-Former 12, LLM 20) so that every shape check tells them apart; two Q-Former
# layers with cross_attention_frequency 2: layer 0 cross-attends to the image, layer 1 does not
VISION = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2, image_size=14,
              patch_size=7, hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True)
QFORMER = dict(hidden_size=12, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
               cross_attention_frequency=2, encoder_hidden_size=16, hidden_act="gelu", layer_norm_eps=1e-12,
               position_embedding_type="absolute", vocab_size=30522, max_position_embeddings=512)
NUM_QUERY_TOKENS = 4
TEXT = dict(hidden_size=20, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
            rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=256, hidden_act="silu", vocab_size=64)
OPT_WIDTH = 8  # BLIP-2's own language model, present in the folder and ignored
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
BOS = 1
BEFORE = [7, 19, 33]           # stands for "###Human: <Img>"
AFTER = [40, 12, 5, 61, 27]    # stands for "</Img> {question} ###Assistant:"


# ---------------------------------------------------------------- weights
def make_weights():
    g = torch.Generator().manual_seed(20251201)
    w = {}

    def rnd(name, *shape, std=0.2, mean=0.0):
        t = torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean
        t = t.to(torch.bfloat16).to(torch.float16).to(torch.float64)  # exact in both half types
        assert torch.equal(t.to(torch.bfloat16).to(torch.float64), t)
        w[name] = t

    def linear(name, i, o, bias=True, std=0.3):
        rnd(name + ".weight", o, i, std=std)
        if bias:
            rnd(name + ".bias", o, std=0.1)

    def norm(name, d):
        rnd(name + ".weight", d, mean=1.0, std=0.1)
        rnd(name + ".bias", d, std=0.1)

    v, q, t = VISION, QFORMER, TEXT
    D, P = v["hidden_size"], v["patch_size"]
    n_pos = (v["image_size"] // P) ** 2 + 1
    p = "vision_model."
    rnd(p + "embeddings.class_embedding", 1, 1, D, std=0.5)
    rnd(p + "embeddings.patch_embedding.weight", D, 3, P, P, std=0.05)
    rnd(p + "embeddings.patch_embedding.bias", D, std=0.1)
    rnd(p + "embeddings.position_embedding", 1, n_pos, D, std=0.3)
    for i in range(v["num_hidden_layers"]):
        s = f"{p}encoder.layers.{i}."
        linear(s + "self_attn.qkv", D, 3 * D, bias=False)
        rnd(s + "self_attn.q_bias", D, std=0.1)
        rnd(s + "self_attn.v_bias", D, std=0.1)
        linear(s + "self_attn.projection", D, D)
        norm(s + "layer_norm1", D)
        linear(s + "mlp.fc1", D, v["intermediate_size"])
        linear(s + "mlp.fc2", v["intermediate_size"], D)
        norm(s + "layer_norm2", D)
    norm(p + "post_layernorm", D)

    Q = q["hidden_size"]
    norm("qformer.layernorm", Q)
    for i in range(q["num_hidden_layers"]):
        s = f"qformer.encoder.layer.{i}."
        kinds = [("attention", Q)] + ([("crossattention", D)] if i % q["cross_attention_frequency"] == 0 else [])
        for kind, src in kinds:
            linear(f"{s}{kind}.attention.query", Q, Q)
            linear(f"{s}{kind}.attention.key", src, Q)
            linear(f"{s}{kind}.attention.value", src, Q)
            linear(f"{s}{kind}.output.dense", Q, Q)
            norm(f"{s}{kind}.output.LayerNorm", Q)
        linear(s + "intermediate_query.dense", Q, q["intermediate_size"])
        linear(s + "output_query.dense", q["intermediate_size"], Q)
        norm(s + "output_query.LayerNorm", Q)
    rnd("query_tokens", 1, NUM_QUERY_TOKENS, Q, std=0.5)

    H = t["hidden_size"]
    linear("language_projection", Q, H)
    hd = H // t["num_attention_heads"]
    kv = t["num_key_value_heads"] * hd
    m = "language_model.model."
    rnd(m + "embed_tokens.weight", t["vocab_size"], H, std=0.5)
    for i in range(t["num_hidden_layers"]):
        s = f"{m}layers.{i}."
        linear(s + "self_attn.q_proj", H, H, bias=False)
        linear(s + "self_attn.k_proj", H, kv, bias=False)
        linear(s + "self_attn.v_proj", H, kv, bias=False)
        linear(s + "self_attn.o_proj", H, H, bias=False)
        linear(s + "mlp.gate_proj", H, t["intermediate_size"], bias=False)
        linear(s + "mlp.up_proj", H, t["intermediate_size"], bias=False)
        linear(s + "mlp.down_proj", t["intermediate_size"], H, bias=False)
        rnd(s + "input_layernorm.weight", H, mean=1.0, std=0.1)
        rnd(s + "post_attention_layernorm.weight", H, mean=1.0, std=0.1)
    rnd(m + "norm.weight", H, mean=1.0, std=0.1)
    rnd("language_model.lm_head.weight", t["vocab_size"], H, std=0.3)
    return w


# ---------------------------------------------------------------- forward passes (float64)
def layer_norm(x, w, p, eps):
    return F.layer_norm(x, (x.shape[-1],), w[p + ".weight"], w[p + ".bias"], eps)


def lin(x, w, p):
    return F.linear(x, w[p + ".weight"], w.get(p + ".bias"))


def vision_model(w, pixel_values):
    """Blip2VisionModel: embeddings -> encoder -> post_layernorm; returns last_hidden_state."""
    v, p = VISION, "vision_model."
    B, D, heads = pixel_values.shape[0], v["hidden_size"], v["num_attention_heads"]
    hd, eps = D // heads, v["layer_norm_eps"]
    patch_embeds = F.conv2d(pixel_values, w[p + "embeddings.patch_embedding.weight"],
                            w[p + "embeddings.patch_embedding.bias"], stride=v["patch_size"])
    patch_embeds = patch_embeds.flatten(2).transpose(1, 2)
    class_embeds = w[p + "embeddings.class_embedding"].expand(B, 1, -1)
    h = torch.cat([class_embeds, patch_embeds], dim=1)
    h = h + w[p + "embeddings.position_embedding"][:, : h.size(1), :]
    for i in range(v["num_hidden_layers"]):
        s = f"{p}encoder.layers.{i}."
        residual = h
        x = layer_norm(h, w, s + "layer_norm1", eps)
        # Blip2Attention: fused qkv without bias, then q_bias, zeros for the key, v_bias
        T = x.shape[1]
        qkv_bias = torch.cat((w[s + "self_attn.q_bias"], torch.zeros_like(w[s + "self_attn.v_bias"]),
                              w[s + "self_attn.v_bias"]))
        mixed = F.linear(x, w[s + "self_attn.qkv.weight"], qkv_bias)
        mixed = mixed.reshape(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)
        Qs, Ks, Vs = mixed[0], mixed[1], mixed[2]
        scores = torch.matmul(Qs, Ks.transpose(-1, -2)) * hd ** -0.5
        ctx = torch.matmul(torch.softmax(scores, dim=-1), Vs).permute(0, 2, 1, 3).reshape(B, T, D)
        h = lin(ctx, w, s + "self_attn.projection") + residual
        residual = h
        x = layer_norm(h, w, s + "layer_norm2", eps)
        x = lin(F.gelu(lin(x, w, s + "mlp.fc1")), w, s + "mlp.fc2")
        h = x + residual
    return layer_norm(h, w, p + "post_layernorm", eps)


def qformer_attention(w, p, hidden, source):
    """Blip2QFormerAttention: Blip2QFormerMultiHeadAttention (no mask) + Blip2QFormerSelfOutput."""
    q = QFORMER
    B, heads = hidden.shape[0], q["num_attention_heads"]
    hd = q["hidden_size"] // heads

    def scores_shape(x):
        return x.view(x.size(0), x.size(1), heads, hd).permute(0, 2, 1, 3)

    key = scores_shape(lin(source, w, p + ".attention.key"))
    value = scores_shape(lin(source, w, p + ".attention.value"))
    query = scores_shape(lin(hidden, w, p + ".attention.query"))
    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(hd)
    ctx = torch.matmul(torch.softmax(scores, dim=-1), value).permute(0, 2, 1, 3).contiguous()
    ctx = ctx.view(B, -1, q["hidden_size"])
    return layer_norm(lin(ctx, w, p + ".output.dense") + hidden, w, p + ".output.LayerNorm", q["layer_norm_eps"])


def qformer(w, image_embeds):
    """Blip2QFormerModel(query_embeds=query_tokens, encoder_hidden_states=image_embeds): last_hidden_state."""
    q = QFORMER
    B = image_embeds.shape[0]
    h = layer_norm(w["query_tokens"].expand(B, -1, -1), w, "qformer.layernorm", q["layer_norm_eps"])
    for i in range(q["num_hidden_layers"]):
        s = f"qformer.encoder.layer.{i}."
        h = qformer_attention(w, s + "attention", h, h)
        if i % q["cross_attention_frequency"] == 0:
            h = qformer_attention(w, s + "crossattention", h, image_embeds)
        x = F.gelu(lin(h, w, s + "intermediate_query.dense"))
        h = layer_norm(lin(x, w, s + "output_query.dense") + h, w, s + "output_query.LayerNorm", q["layer_norm_eps"])
    return h


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def llama_logits(w, embeds):
    """LlamaForCausalLM.forward(inputs_embeds=...) with positions 0..T-1 and a causal mask."""
    t, m = TEXT, "language_model.model."
    B, T, H = embeds.shape
    heads, kvh = t["num_attention_heads"], t["num_key_value_heads"]
    hd = H // heads
    inv_freq = 1.0 / (t["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    h = embeds
    for i in range(t["num_hidden_layers"]):
        s = f"{m}layers.{i}."
        r = h
        x = rms_norm(h, w[s + "input_layernorm.weight"], t["rms_norm_eps"])
        Q = F.linear(x, w[s + "self_attn.q_proj.weight"]).view(B, T, heads, hd).transpose(1, 2)
        K = F.linear(x, w[s + "self_attn.k_proj.weight"]).view(B, T, kvh, hd).transpose(1, 2)
        V = F.linear(x, w[s + "self_attn.v_proj.weight"]).view(B, T, kvh, hd).transpose(1, 2)
        Q = Q * cos + rotate_half(Q) * sin
        K = K * cos + rotate_half(K) * sin
        K = K[:, :, None].expand(B, kvh, heads // kvh, T, hd).reshape(B, heads, T, hd)
        V = V[:, :, None].expand(B, kvh, heads // kvh, T, hd).reshape(B, heads, T, hd)
        a = torch.softmax(Q @ K.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1) @ V
        h = r + F.linear(a.transpose(1, 2).reshape(B, T, H), w[s + "self_attn.o_proj.weight"])
        r = h
        x = rms_norm(h, w[s + "post_attention_layernorm.weight"], t["rms_norm_eps"])
        x = F.silu(F.linear(x, w[s + "mlp.gate_proj.weight"])) * F.linear(x, w[s + "mlp.up_proj.weight"])
        h = r + F.linear(x, w[s + "mlp.down_proj.weight"])
    h = rms_norm(h, w[m + "norm.weight"], t["rms_norm_eps"])
    return F.linear(h, w["language_model.lm_head.weight"])


# ---------------------------------------------------------------- writing
def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_sharded(folder, tensors, n_shards):
    """model-0000k-of-0000n.safetensors + model.safetensors.index.json, as transformers' save_pretrained does."""
    names = list(tensors)
    per = math.ceil(len(names) / n_shards)
    weight_map, total = {}, 0
    for k in range(n_shards):
        file = f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[k * per:(k + 1) * per]}
        write_safetensors(os.path.join(folder, file), part, {"format": "pt"})
        for n, t in part.items():
            weight_map[n] = file
            total += t.numel() * t.element_size()
    write_json(os.path.join(folder, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map})


def write_blip2(folder, w):
    os.makedirs(folder)
    g = torch.Generator().manual_seed(3)
    tensors = {n: t.to(torch.float32) for n, t in w.items()
               if n.startswith(("vision_model.", "qformer.")) or n == "query_tokens"}
    # what MiniGPT-4 does not use: BLIP-2's own projection and LLM, a Q-Former text-side FFN
    tensors["qformer.encoder.layer.0.intermediate.dense.weight"] = torch.randn(4, QFORMER["hidden_size"], generator=g)
    tensors["language_projection.weight"] = torch.randn(OPT_WIDTH, QFORMER["hidden_size"], generator=g)
    tensors["language_projection.bias"] = torch.randn(OPT_WIDTH, generator=g)
    tensors["language_model.lm_head.weight"] = torch.randn(10, OPT_WIDTH, generator=g)
    write_sharded(folder, tensors, 2)
    write_json(os.path.join(folder, "config.json"), dict(
        architectures=["Blip2ForConditionalGeneration"], model_type="blip-2", num_query_tokens=NUM_QUERY_TOKENS,
        initializer_factor=1.0, initializer_range=0.02, torch_dtype="float32", transformers_version="4.47.1",
        vision_config=dict(VISION, model_type="blip_2_vision_model", attention_dropout=0.0, initializer_range=1e-10),
        qformer_config=dict(QFORMER, model_type="blip_2_qformer", hidden_dropout_prob=0.1,
                            attention_probs_dropout_prob=0.1, initializer_range=0.02, pad_token_id=0),
        text_config=dict(model_type="opt", hidden_size=OPT_WIDTH, num_hidden_layers=0, vocab_size=10,
                         word_embed_proj_dim=OPT_WIDTH)))
    write_json(os.path.join(folder, "preprocessor_config.json"), dict(
        do_convert_rgb=True, do_normalize=True, do_rescale=True, do_resize=True, image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD, image_processor_type="BlipImageProcessor", processor_class="Blip2Processor",
        resample=3, rescale_factor=1 / 255, size={"height": VISION["image_size"], "width": VISION["image_size"]}))


def write_vicuna(folder, w):
    os.makedirs(folder)
    tensors = {n[len("language_model."):]: t.to(torch.float16) for n, t in w.items() if n.startswith("language_model.")}
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})
    write_json(os.path.join(folder, "config.json"), dict(
        TEXT, architectures=["LlamaForCausalLM"], model_type="llama", bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=False, torch_dtype="float16", initializer_range=0.02, use_cache=True, rope_scaling=None,
        pretraining_tp=1, transformers_version="4.28.0.dev0"))


def write_projection(path, w):
    """MiniGPT-4's checkpoint layout (model dict with llama_proj.*, plus training state), then the converter."""
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "pretrained_minigpt4_tiny.pth")
        torch.save({"model": {"llama_proj.weight": w["language_projection.weight"].to(torch.float32),
                              "llama_proj.bias": w["language_projection.bias"].to(torch.float32)},
                    "epoch": 3, "config": {"arch": "mini_gpt4"}}, pth)
        convert(pth, path)


def main():
    w = make_weights()
    g = torch.Generator().manual_seed(99)
    image = torch.rand(2, 3, VISION["image_size"], VISION["image_size"], generator=g, dtype=torch.float64)
    mean = torch.tensor(IMAGE_MEAN, dtype=torch.float64)[None, :, None, None]
    std = torch.tensor(IMAGE_STD, dtype=torch.float64)[None, :, None, None]
    pixel_values = ((image - mean) / std).to(torch.float32).to(torch.float64)  # the model sees float32 pixels

    with torch.no_grad():
        image_embeds = vision_model(w, pixel_values)
        query_output = qformer(w, image_embeds)
        image_tokens = lin(query_output, w, "language_projection")
        emb = w["language_model.model.embed_tokens.weight"]
        seq = torch.cat([emb[torch.tensor([BOS] + BEFORE)][None], image_tokens[:1], emb[torch.tensor(AFTER)][None]], 1)
        logits = llama_logits(w, seq)

    folder = os.path.join(ROOT, "minigpt4-tiny")
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    write_blip2(os.path.join(folder, "blip2"), w)
    write_vicuna(os.path.join(folder, "vicuna"), w)
    write_projection(os.path.join(folder, "projection.safetensors"), w)
    write_safetensors(os.path.join(ROOT, "reference.safetensors"), {
        "pixel_values": pixel_values.to(torch.float32),
        "image_embeds": image_embeds.to(torch.float32),
        "query_output": query_output.to(torch.float32),
        "image_tokens": image_tokens.to(torch.float32),
        "input_ids_before_image": torch.tensor([BOS] + BEFORE, dtype=torch.int64),
        "input_ids_after_image": torch.tensor(AFTER, dtype=torch.int64),
        "logits": logits.to(torch.float32),
    }, {"torch": torch.__version__, "script": "tools/make_minigpt4_reference.py"})
    print(f"sequence {seq.shape[1]} = {1 + len(BEFORE)} + {image_tokens.shape[1]} visual + {len(AFTER)}, "
          f"logits {tuple(logits.shape)}, |logits| max {logits.abs().max().item():.3f}")


if __name__ == "__main__":
    sys.exit(main())
