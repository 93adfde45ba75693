#!/usr/bin/python3
"""Make the tiny LLaVA-1.5 checkpoints and PyTorch reference logits used by FedNano.Tests.

Writes FedNano.Tests/Fixtures/llava-reference/:
  original/llava-tiny/       LLaVA's own layout (LlavaLlamaForCausalLM): flat LLaMA config.json with mm_* fields,
                             2 float16 shards + model.safetensors.index.json, keys model.layers.*, model.embed_tokens,
                             model.norm, lm_head, model.mm_projector.{0,2}.*; tokenizer.model
  original/clip-vit-tiny/    the vision tower in its own folder, as a CLIPModel checkpoint (config.json with
                             vision_config, model.safetensors in float32, vision_model.* plus text-side keys)
  converted/llava-tiny-hf/   transformers' LlavaForConditionalGeneration layout: config.json with text_config and
                             vision_config, 2 bfloat16 shards + index, keys language_model.model.*,
                             language_model.lm_head, multi_modal_projector.linear_{1,2}.*, vision_tower.vision_model.*;
                             vocabulary padded by 8 rows as llava-hf pads 32000 -> 32064; tokenizer.model
  reference.safetensors      image ([0,1]) and pixel_values (CLIP-normalised), the vicuna_v1 prompt's token ids split
                             at the image, the projected image features, and the logits of the converted model at
                             logit_positions (the original layout's logits are their first vocab_size columns)

Every weight is rounded so that it is exact in float16 AND bfloat16: both layouts hold identical values and the
reference (computed in float64, stored as float32) applies to both.

The math follows Hugging Face transformers (CLIPVisionModel, LlavaMultiModalProjector, LlamaForCausalLM) and LLaVA
(llava/mm_utils.tokenizer_image_token, conv_vicuna_v1) line by line; no transformers package is used.
Run with Debian's python3-torch and python3-sentencepiece:  /usr/bin/python3 tools/make_llava_reference.py
"""
import io
import json
import math
import os
import struct
import sys

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "FedNano.Tests", "Fixtures", "llava-reference")

VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=28,
              patch_size=7, num_channels=3, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=16)
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=256, hidden_act="silu")
FEATURE_LAYER = -2
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
VOCAB_PAD = 8  # llava-hf: 32000 + <image> + <pad>, padded to 32064

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
QUESTION = "Which of these states is farthest north?\nA. West Virginia\nB. Louisiana\nC. Arizona\nD. Oklahoma\nAnswer with the option's letter from the given choices directly."
IMAGE_TOKEN_INDEX = -200  # LLaVA's placeholder id in input_ids


def vicuna_v1_prompt(question):
    """conv_vicuna_v1.get_prompt() for one user turn with the image first and an open assistant turn."""
    return SYSTEM + " USER: <image>\n" + question + " ASSISTANT:"


# ---------------------------------------------------------------- tokenizer (LLaMA-style SentencePiece BPE)
CORPUS = [SYSTEM, QUESTION, "Which of these organisms contains matter that was once part of the grass?",
          "What is the capital of Oklahoma? Context: Select the best answer from the choices.",
          "Think about the magnetic force between the magnets in each pair. Which of the following statements is true?",
          "The magnitude of the magnetic force is smaller in Pair 1. 0123456789 A B C D E"] * 4


def train_tokenizer():
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=buf, model_type="bpe", vocab_size=400, hard_vocab_limit=False,
        byte_fallback=True, split_digits=True, normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return buf.getvalue()


def tokenizer_image_token(sp, prompt):
    """llava.mm_utils.tokenizer_image_token with a LLaMA tokenizer that adds BOS to every chunk."""
    chunks = [[sp.bos_id()] + sp.encode(c) for c in prompt.split("<image>")]
    ids = [chunks[0][0]]
    for i, c in enumerate(chunks):
        if i > 0:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(c[1:])
    return ids


# ---------------------------------------------------------------- weights (canonical = converted names)
def make_weights(vocab):
    g = torch.Generator().manual_seed(20240605)
    w = {}

    def rnd(name, *shape, std=0.1, mean=0.0):
        t = torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean
        t = t.to(torch.bfloat16).to(torch.float16).to(torch.float64)  # exact in both half types
        assert torch.equal(t.to(torch.bfloat16).to(torch.float64), t)
        w[name] = t

    v, t = VISION, TEXT
    D, P, C = v["hidden_size"], v["patch_size"], v["num_channels"]
    n_pos = (v["image_size"] // P) ** 2 + 1
    p = "vision_tower.vision_model."
    rnd(p + "embeddings.class_embedding", D, std=0.5)
    rnd(p + "embeddings.patch_embedding.weight", D, C, P, P, std=0.05)
    rnd(p + "embeddings.position_embedding.weight", n_pos, D, std=0.3)
    rnd(p + "pre_layrnorm.weight", D, mean=1.0)
    rnd(p + "pre_layrnorm.bias", D)
    for i in range(v["num_hidden_layers"]):
        q = f"{p}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            rnd(q + f"self_attn.{proj}.weight", D, D, std=0.2)
            rnd(q + f"self_attn.{proj}.bias", D)
        for ln in ("layer_norm1", "layer_norm2"):
            rnd(q + ln + ".weight", D, mean=1.0)
            rnd(q + ln + ".bias", D)
        rnd(q + "mlp.fc1.weight", v["intermediate_size"], D, std=0.2)
        rnd(q + "mlp.fc1.bias", v["intermediate_size"])
        rnd(q + "mlp.fc2.weight", D, v["intermediate_size"], std=0.2)
        rnd(q + "mlp.fc2.bias", D)
    rnd(p + "post_layernorm.weight", D, mean=1.0)
    rnd(p + "post_layernorm.bias", D)

    H = t["hidden_size"]
    rnd("multi_modal_projector.linear_1.weight", H, D, std=0.2)
    rnd("multi_modal_projector.linear_1.bias", H)
    rnd("multi_modal_projector.linear_2.weight", H, H, std=0.2)
    rnd("multi_modal_projector.linear_2.bias", H)

    hd = H // t["num_attention_heads"]
    kv = t["num_key_value_heads"] * hd
    m = "language_model.model."
    rnd(m + "embed_tokens.weight", vocab + VOCAB_PAD, H, std=0.5)
    for i in range(t["num_hidden_layers"]):
        q = f"{m}layers.{i}."
        rnd(q + "self_attn.q_proj.weight", H, H, std=0.2)
        rnd(q + "self_attn.k_proj.weight", kv, H, std=0.2)
        rnd(q + "self_attn.v_proj.weight", kv, H, std=0.2)
        rnd(q + "self_attn.o_proj.weight", H, H, std=0.2)
        rnd(q + "mlp.gate_proj.weight", t["intermediate_size"], H, std=0.2)
        rnd(q + "mlp.up_proj.weight", t["intermediate_size"], H, std=0.2)
        rnd(q + "mlp.down_proj.weight", H, t["intermediate_size"], std=0.2)
        rnd(q + "input_layernorm.weight", H, mean=1.0)
        rnd(q + "post_attention_layernorm.weight", H, mean=1.0)
    rnd(m + "norm.weight", H, mean=1.0)
    rnd("language_model.lm_head.weight", vocab + VOCAB_PAD, H, std=0.3)
    return w


# ---------------------------------------------------------------- forward passes (float64)
def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def clip_vision_hidden_states(w, pixel_values):
    """CLIPVisionTransformer: embeddings -> pre_layrnorm -> encoder; returns all hidden states (input first)."""
    v, p = VISION, "vision_tower.vision_model."
    B, D, heads = pixel_values.shape[0], v["hidden_size"], v["num_attention_heads"]
    hd = D // heads
    patches = F.conv2d(pixel_values, w[p + "embeddings.patch_embedding.weight"], stride=v["patch_size"])
    patches = patches.flatten(2).transpose(1, 2)
    cls = w[p + "embeddings.class_embedding"].expand(B, 1, D)
    h = torch.cat([cls, patches], dim=1) + w[p + "embeddings.position_embedding.weight"][None]
    h = layer_norm(h, w[p + "pre_layrnorm.weight"], w[p + "pre_layrnorm.bias"], v["layer_norm_eps"])
    states = [h]
    for i in range(v["num_hidden_layers"]):
        q = f"{p}encoder.layers.{i}."
        lin = lambda x, n: F.linear(x, w[q + n + ".weight"], w[q + n + ".bias"])
        r = h
        x = layer_norm(h, w[q + "layer_norm1.weight"], w[q + "layer_norm1.bias"], v["layer_norm_eps"])
        T = x.shape[1]
        Q = lin(x, "self_attn.q_proj").view(B, T, heads, hd).transpose(1, 2) * hd ** -0.5
        K = lin(x, "self_attn.k_proj").view(B, T, heads, hd).transpose(1, 2)
        V = lin(x, "self_attn.v_proj").view(B, T, heads, hd).transpose(1, 2)
        a = torch.softmax(Q @ K.transpose(-1, -2), dim=-1) @ V
        h = r + lin(a.transpose(1, 2).reshape(B, T, D), "self_attn.out_proj")
        r = h
        x = layer_norm(h, w[q + "layer_norm2.weight"], w[q + "layer_norm2.bias"], v["layer_norm_eps"])
        x = lin(x, "mlp.fc1")
        x = x * torch.sigmoid(1.702 * x)  # quick_gelu
        h = r + lin(x, "mlp.fc2")
        states.append(h)
    return states


def image_features(w, pixel_values):
    """LlavaForConditionalGeneration.get_image_features with vision_feature_layer=-2, strategy 'default'."""
    f = clip_vision_hidden_states(w, pixel_values)[FEATURE_LAYER][:, 1:]
    x = F.linear(f, w["multi_modal_projector.linear_1.weight"], w["multi_modal_projector.linear_1.bias"])
    x = F.gelu(x)  # exact (erf) GELU
    return F.linear(x, w["multi_modal_projector.linear_2.weight"], w["multi_modal_projector.linear_2.bias"])


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
        q = f"{m}layers.{i}."
        r = h
        x = rms_norm(h, w[q + "input_layernorm.weight"], t["rms_norm_eps"])
        Q = F.linear(x, w[q + "self_attn.q_proj.weight"]).view(B, T, heads, hd).transpose(1, 2)
        K = F.linear(x, w[q + "self_attn.k_proj.weight"]).view(B, T, kvh, hd).transpose(1, 2)
        V = F.linear(x, w[q + "self_attn.v_proj.weight"]).view(B, T, kvh, hd).transpose(1, 2)
        Q = Q * cos + rotate_half(Q) * sin
        K = K * cos + rotate_half(K) * sin
        # repeat_kv: kv head j serves query heads j*n_rep .. (j+1)*n_rep-1
        K = K[:, :, None].expand(B, kvh, heads // kvh, T, hd).reshape(B, heads, T, hd)
        V = V[:, :, None].expand(B, kvh, heads // kvh, T, hd).reshape(B, heads, T, hd)
        a = torch.softmax(Q @ K.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1) @ V
        h = r + F.linear(a.transpose(1, 2).reshape(B, T, H), w[q + "self_attn.o_proj.weight"])
        r = h
        x = rms_norm(h, w[q + "post_attention_layernorm.weight"], t["rms_norm_eps"])
        x = F.silu(F.linear(x, w[q + "mlp.gate_proj.weight"])) * F.linear(x, w[q + "mlp.up_proj.weight"])
        h = r + F.linear(x, w[q + "mlp.down_proj.weight"])
    h = rms_norm(h, w[m + "norm.weight"], t["rms_norm_eps"])
    return F.linear(h, w["language_model.lm_head.weight"])


# ---------------------------------------------------------------- safetensors writing (the format, by hand)
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}}, raw data."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


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
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------- layouts
def original_key(canonical):
    """The converted (canonical) name -> LLaVA's own name; None for the vision tower (its own folder)."""
    if canonical.startswith("vision_tower."):
        return None
    if canonical.startswith("language_model.model."):
        return "model." + canonical[len("language_model.model."):]
    if canonical == "language_model.lm_head.weight":
        return "lm_head.weight"
    return {"multi_modal_projector.linear_1.weight": "model.mm_projector.0.weight",
            "multi_modal_projector.linear_1.bias": "model.mm_projector.0.bias",
            "multi_modal_projector.linear_2.weight": "model.mm_projector.2.weight",
            "multi_modal_projector.linear_2.bias": "model.mm_projector.2.bias"}[canonical]


def write_original(w, vocab, tok_model):
    llava = os.path.join(ROOT, "original", "llava-tiny")
    clip = os.path.join(ROOT, "original", "clip-vit-tiny")
    os.makedirs(llava, exist_ok=True)
    os.makedirs(clip, exist_ok=True)
    tensors = {}
    for n, t in w.items():
        k = original_key(n)
        if k is None:
            continue
        if n.endswith("embed_tokens.weight") or n.endswith("lm_head.weight"):
            t = t[:vocab]  # LLaVA-1.5 keeps vicuna's vocabulary
        tensors[k] = t.to(torch.float16)
    write_sharded(llava, tensors, 2)
    write_json(os.path.join(llava, "config.json"), dict(
        architectures=["LlavaLlamaForCausalLM"], model_type="llava_llama", **TEXT, vocab_size=vocab,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, torch_dtype="float16",
        use_cache=True, initializer_range=0.02, pretraining_tp=1, rope_scaling=None,
        image_aspect_ratio="pad", mm_hidden_size=VISION["hidden_size"], mm_projector_type="mlp2x_gelu",
        mm_use_im_patch_token=False, mm_use_im_start_end=False, mm_vision_select_feature="patch",
        mm_vision_select_layer=FEATURE_LAYER, mm_vision_tower="../clip-vit-tiny", mm_patch_merge_type="flat",
        tokenizer_model_max_length=2048, tokenizer_padding_side="right", freeze_mm_mlp_adapter=False,
        tune_mm_mlp_adapter=False, use_mm_proj=True))
    with open(os.path.join(llava, "tokenizer.model"), "wb") as f:
        f.write(tok_model)

    # the tower as openai/clip-vit-large-patch14-336 ships it: a whole CLIPModel, float32, one file
    g = torch.Generator().manual_seed(7)
    vt = {"vision_model." + n[len("vision_tower.vision_model."):]: t.to(torch.float32)
          for n, t in w.items() if n.startswith("vision_tower.")}
    vt["visual_projection.weight"] = torch.randn(VISION["projection_dim"], VISION["hidden_size"], generator=g)
    vt["text_projection.weight"] = torch.randn(VISION["projection_dim"], 8, generator=g)
    vt["text_model.final_layer_norm.weight"] = torch.ones(8)
    vt["logit_scale"] = torch.tensor(4.6052)
    write_safetensors(os.path.join(clip, "model.safetensors"), vt, {"format": "pt"})
    vision_cfg = {k: v for k, v in VISION.items()}
    write_json(os.path.join(clip, "config.json"), dict(
        architectures=["CLIPModel"], model_type="clip", projection_dim=VISION["projection_dim"],
        text_config=dict(hidden_size=8, num_hidden_layers=0, model_type="clip_text_model"),
        vision_config=dict(vision_cfg, model_type="clip_vision_model")))
    write_json(os.path.join(clip, "preprocessor_config.json"), dict(
        crop_size={"height": VISION["image_size"], "width": VISION["image_size"]}, do_center_crop=True,
        do_normalize=True, do_resize=True, image_mean=IMAGE_MEAN, image_std=IMAGE_STD, resample=3,
        size={"shortest_edge": VISION["image_size"]}, image_processor_type="CLIPImageProcessor"))


def write_converted(w, vocab, tok_model):
    folder = os.path.join(ROOT, "converted", "llava-tiny-hf")
    os.makedirs(folder, exist_ok=True)
    write_sharded(folder, {n: t.to(torch.bfloat16) for n, t in w.items()}, 2)
    write_json(os.path.join(folder, "config.json"), dict(
        architectures=["LlavaForConditionalGeneration"], model_type="llava", ignore_index=-100,
        image_token_index=vocab, pad_token_id=vocab + 1, projector_hidden_act="gelu",
        vision_feature_layer=FEATURE_LAYER, vision_feature_select_strategy="default", torch_dtype="bfloat16",
        tie_word_embeddings=False,
        text_config=dict(TEXT, model_type="llama", vocab_size=vocab + VOCAB_PAD, architectures=["LlamaForCausalLM"],
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False),
        vision_config=dict(VISION, model_type="clip_vision_model")))
    write_json(os.path.join(folder, "preprocessor_config.json"), dict(
        crop_size={"height": VISION["image_size"], "width": VISION["image_size"]}, image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD, image_processor_type="CLIPImageProcessor"))
    with open(os.path.join(folder, "tokenizer.model"), "wb") as f:
        f.write(tok_model)


def main():
    torch.manual_seed(0)
    tok_model = train_tokenizer()
    sp = spm.SentencePieceProcessor(model_proto=tok_model)
    vocab = sp.get_piece_size()
    ids = tokenizer_image_token(sp, vicuna_v1_prompt(QUESTION))
    cut = ids.index(IMAGE_TOKEN_INDEX)
    before, after = ids[:cut], ids[cut + 1:]

    w = make_weights(vocab)
    g = torch.Generator().manual_seed(99)
    image = torch.rand(1, 3, VISION["image_size"], VISION["image_size"], generator=g, dtype=torch.float64)
    mean = torch.tensor(IMAGE_MEAN, dtype=torch.float64)[None, :, None, None]
    std = torch.tensor(IMAGE_STD, dtype=torch.float64)[None, :, None, None]
    pixel_values = ((image - mean) / std).to(torch.float32).to(torch.float64)  # the model sees float32 pixels

    with torch.no_grad():
        feats = image_features(w, pixel_values)
        emb = w["language_model.model.embed_tokens.weight"]
        seq = torch.cat([emb[torch.tensor(before)][None], feats, emb[torch.tensor(after)][None]], dim=1)
        logits = llama_logits(w, seq)

    # every 8th position and the last (causal: an error anywhere before shows in later positions); keeps it small
    positions = torch.tensor(sorted(set(range(0, seq.shape[1], 8)) | {seq.shape[1] - 1}), dtype=torch.int64)
    for sub in ("original", "converted"):
        if os.path.isdir(os.path.join(ROOT, sub)):
            import shutil
            shutil.rmtree(os.path.join(ROOT, sub))
    write_original(w, vocab, tok_model)
    write_converted(w, vocab, tok_model)
    write_safetensors(os.path.join(ROOT, "reference.safetensors"), {
        "image": image.to(torch.float32),
        "pixel_values": pixel_values.to(torch.float32),
        "input_ids_before_image": torch.tensor(before, dtype=torch.int64),
        "input_ids_after_image": torch.tensor(after, dtype=torch.int64),
        "image_features": feats.to(torch.float32),
        "logit_positions": positions,
        "logits": logits[:, positions].to(torch.float32),
    }, {"prompt": vicuna_v1_prompt(QUESTION), "question": QUESTION, "vocab_size": str(vocab),
        "torch": torch.__version__, "script": "tools/make_llava_reference.py"})
    print(f"vocab {vocab}, sequence {seq.shape[1]} = {len(before)} + {feats.shape[1]} image + {len(after)}, "
          f"logits {tuple(logits.shape)}, |logits| max {logits.abs().max().item():.3f}")


if __name__ == "__main__":
    sys.exit(main())
