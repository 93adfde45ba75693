#!/usr/bin/python3
"""Convert MiniGPT-4's projection checkpoint (.pth) to the safetensors file FedNano.Sim reads.

MiniGPT-4 (Vision-CAIR/MiniGPT-4) trains only `llama_proj`, the linear layer from the Q-Former (768) to Vicuna
(4096), and its released checkpoint (e.g. prerained_minigpt4_7b.pth) is a PyTorch pickle whose `model` dict holds
`llama_proj.weight` [4096, 768] and `llama_proj.bias` [4096] (other entries, if any, are ignored). This script
writes them as `language_projection.weight` / `language_projection.bias` (Hugging Face's Blip2 names) in a
safetensors file, in their own dtype. FedNano.Sim itself never reads a pickle.

    /usr/bin/python3 tools/convert_minigpt4_projection.py prerained_minigpt4_7b.pth minigpt4-7b/projection.safetensors

Needs only torch (Debian: python3-torch). The pickle is read with torch.load(weights_only=True), which refuses
anything but tensors and plain containers.
"""
import json
import os
import struct
import sys

import torch

KEYS = {"llama_proj.weight": "language_projection.weight", "llama_proj.bias": "language_projection.bias"}
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int64: "I64"}


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


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
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def projection(checkpoint):
    """The two projection tensors of a loaded MiniGPT-4 checkpoint, under their Blip2 names."""
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError("not a MiniGPT-4 checkpoint: expected a dict with a 'model' state dict")
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise ValueError(f"no {', '.join(missing)} in the checkpoint's model dict (keys: {', '.join(list(state)[:5])})")
    w, b = state["llama_proj.weight"], state["llama_proj.bias"]
    if w.dim() != 2 or b.dim() != 1 or b.shape[0] != w.shape[0]:
        raise ValueError(f"llama_proj.weight {list(w.shape)} and llama_proj.bias {list(b.shape)} "
                         "are not one linear layer")
    return {KEYS["llama_proj.weight"]: w, KEYS["llama_proj.bias"]: b}


def convert(pth, out):
    tensors = projection(torch.load(pth, map_location="cpu", weights_only=True))
    write_safetensors(out, tensors, {"format": "pt", "source": os.path.basename(pth)})
    return tensors


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[0] + "\nusage: convert_minigpt4_projection.py IN.pth OUT.safetensors",
              file=sys.stderr)
        return 2
    try:
        tensors = convert(argv[1], argv[2])
    except (ValueError, OSError, RuntimeError) as e:
        print(f"{argv[1]}: {e}", file=sys.stderr)
        return 2
    w = tensors["language_projection.weight"]
    print(f"{argv[2]}: language_projection {w.shape[1]} -> {w.shape[0]} ({w.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
