#!/usr/bin/env python3
"""Cross-checks nnc's safetensors and checkpoint code against an independent implementation.

The reader and writer here use only struct, json and hashlib, and follow the format's
specification and the reference implementation's layout (tensors by decreasing dtype, then
name; "__metadata__" first; compact JSON; space padding to a multiple of 8). nnc's side is
driven through tests/io/io_tool.

    crosscheck.py IO_TOOL          files written by nnc read here and vice versa, byte for byte;
                                   checkpoint checksums verified by the documented rule
    crosscheck.py --torch IO_TOOL  the same tensors through torch.frombuffer, both directions;
                                   exits 77 (skipped) when torch is not importable

Exits 0 when every check passes, 1 otherwise.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

# The reference implementation's dtype order (increasing alignment) and element sizes.
ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
         "I32", "U32", "F32", "F64", "I64", "U64"]
SIZE = dict(zip(ORDER, [1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8]))

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def read(path):
    """Returns (raw bytes, header length, metadata dict, {name: (dtype, shape, data, begin)})."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    end_max = 0
    for name, info in header.items():
        begin, end = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        assert end - begin == count * SIZE[info["dtype"]], name
        assert end <= len(data), name
        tensors[name] = (info["dtype"], list(info["shape"]), data[begin:end], begin)
        end_max = max(end_max, end)
    assert end_max == len(data)
    return raw, n, meta, tensors


def dump(meta, tensors):
    """What `io_tool dump` prints for the same file."""
    out = []
    for k in sorted(meta, key=lambda s: s.encode("utf-8")):
        out.append("meta %s=%s\n" % (k, meta[k]))
    for name in sorted(tensors, key=lambda s: s.encode("utf-8")):
        dtype, shape, data, _ = tensors[name]
        out.append("tensor %s %s [%s] %d %s\n" % (
            name, dtype, ",".join(str(d) for d in shape), len(data),
            hashlib.sha256(data).hexdigest()))
    return "".join(out).encode("utf-8")


def serialize(tensors, meta):
    """tensors: {name: (dtype, shape, data)}; laid out as the reference implementation does."""
    names = sorted(tensors, key=lambda s: (-ORDER.index(tensors[s][0]), s.encode("utf-8")))
    header = {}
    if meta:
        header["__metadata__"] = {k: meta[k] for k in sorted(meta, key=lambda s: s.encode("utf-8"))}
    at = 0
    for name in names:
        dtype, shape, data = tensors[name][:3]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        at += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(tensors[n][2] for n in names)


def tool(io_tool, *args):
    return subprocess.run([io_tool, *args], capture_output=True)


def check_layout(path, raw, n, meta, tensors):
    """A file written by nnc: what the reference would write for the same content."""
    check(n % 8 == 0, path + ": header length is a multiple of 8")
    body = raw[8:8 + n]
    check(body.rstrip(b" ").endswith(b"}") and b"\n" not in body, path + ": compact, space padded")
    again = serialize({k: v[:3] for k, v in tensors.items()}, meta)
    check(again == raw, path + ": identical to the Python writer's output")
    for name, (dtype, _, _, begin) in tensors.items():
        check((8 + n + begin) % SIZE[dtype] == 0, path + ": " + name + " aligned")


def format_checks(io_tool, d):
    # nnc writes, Python reads.
    c = os.path.join(d, "c.safetensors")
    r = tool(io_tool, "sample", c)
    check(r.returncode == 0, "io_tool sample: " + r.stderr.decode())
    raw, n, meta, tensors = read(c)
    check_layout(c, raw, n, meta, tensors)
    check(meta.get("note") == "caf\u00e9 \"q\" \\ / \n\t\x01 \U0001F600", "metadata escapes decoded")
    check(meta.get("") == "empty key", "empty metadata key")
    check(len(tensors) == 68, "68 tensors in the sample, got %d" % len(tensors))
    r = tool(io_tool, "dump", c)
    check(r.returncode == 0 and r.stdout == dump(meta, tensors), "dumps agree on nnc's sample")

    # Python writes, nnc reads and writes back the same bytes.
    p = os.path.join(d, "p.safetensors")
    ts = {
        "conv.weight": ("F32", [2, 1, 3, 3], bytes(range(72))),
        "bn.num_batches_tracked": ("I64", [], struct.pack("<q", 12345)),
        "h": ("F16", [3], bytes([0, 0x3c, 0, 0xc0, 0xff, 0x7b])),
        "n\u00e9\u20ac\U0001F600/\\\"\t": ("U8", [5], b"hello"),
        "z": ("BF16", [0, 7], b""),
        "flags": ("BOOL", [2], b"\x01\x00"),
        "u": ("U64", [1], struct.pack("<Q", 2**64 - 1)),
    }
    meta = {"format": "pt", "k\"\\\n": "v\x1f\x7f"}
    open(p, "wb").write(serialize(ts, meta))
    _, _, rmeta, rts = read(p)
    r = tool(io_tool, "dump", p)
    check(r.returncode == 0, "io_tool dump on Python's file: " + r.stderr.decode())
    check(r.stdout == dump(rmeta, rts), "dumps agree on Python's file")
    q = os.path.join(d, "q.safetensors")
    r = tool(io_tool, "rewrite", p, q)
    check(r.returncode == 0 and open(q, "rb").read() == open(p, "rb").read(),
          "nnc rewrites Python's file byte for byte")

    # Headers this reader accepts but a strict one must not, and what nnc says.
    for text, want in [
        (b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},}', b"header JSON, byte 61"),
        (b'{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', b"shape must be an array of integers"),
        (b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
         b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"duplicate tensor name 'a'"),
    ]:
        bad = os.path.join(d, "bad.safetensors")
        open(bad, "wb").write(struct.pack("<Q", len(text)) + text + b"xy")
        r = tool(io_tool, "dump", bad)
        check(r.returncode == 1 and want in r.stderr, "nnc rejects %r: %r" % (text, r.stderr))

    # Checkpoints: the checksum is exactly the documented one.
    k = os.path.join(d, "k.ckpt")
    r = tool(io_tool, "ckpt", k)
    check(r.returncode == 0, "io_tool ckpt: " + r.stderr.decode())
    b = bytearray(open(k, "rb").read())
    i = b.index(b'"nnc.checksum":"sha256:') + 23
    stored, b[i:i + 64] = bytes(b[i:i + 64]), b"0" * 64
    check(hashlib.sha256(b).hexdigest().encode() == stored, "checksum as documented")
    _, _, meta, tensors = read(k)
    check(meta["nnc.format"] == "nnc-checkpoint 1" and meta["nnc.plan"] == "plan-X" and
          meta["nnc.epoch"] == "3" and meta["nnc.step"] == "1234" and
          meta["nnc.rng"] == "0123456789abcdef,0000000000000007" and
          meta["nnc.data_order"] == "0000000000000063" and meta["model"] == "tiny",
          "checkpoint metadata: %r" % meta)
    check(struct.unpack("<4f", tensors["fc.weight"][2]) == (1, 2, 3, 4), "checkpoint tensor")
    r = tool(io_tool, "load-ckpt", k)
    check(r.stdout == b"plan plan-X epoch 3 step 1234 rng 123456789abcdef 7 order 63\n",
          "load-ckpt: %r %r" % (r.stdout, r.stderr))
    # Edit the epoch and re-seal it by the documented rule: nnc accepts it.
    e = b.index(b'"nnc.epoch":"3"') + 13
    b[e:e + 1] = b"4"
    b[i:i + 64] = hashlib.sha256(b).hexdigest().encode()
    open(k, "wb").write(b)
    r = tool(io_tool, "load-ckpt", k)
    check(r.stdout.startswith(b"plan plan-X epoch 4 "), "re-sealed checkpoint: %r" % r.stderr)
    # Without re-sealing, a change is corruption.
    b[-1] ^= 1
    open(k, "wb").write(b)
    r = tool(io_tool, "load-ckpt", k)
    check(r.returncode == 1 and b"checksum mismatch: the file is corrupt" in r.stderr,
          "flipped byte: %r" % r.stderr)
    # Another writer's layout: the metadata last, indented, non-ASCII escaped, sealed by the
    # same rule (hash with the 64 digits as '0's). nnc finds the digits wherever they are.
    raw, n, meta, _ = read(os.path.join(d, "k.ckpt"))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    del header["__metadata__"]
    meta["nnc.checksum"] = "sha256:" + "0" * 64
    meta["note \u00e9\"]"] = "{\"nnc.checksum\":\"sha256:" + "1" * 64 + "\"}"
    header["__metadata__"] = meta
    text = json.dumps(header, indent=1).encode()
    text += b" " * (-len(text) % 8)
    b = bytearray(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    zeros = b'"sha256:' + b"0" * 64 + b'"'
    check(b.count(zeros) == 1, "one checksum in the re-laid-out checkpoint")
    i = b.index(zeros) + 8
    b[i:i + 64] = hashlib.sha256(b).hexdigest().encode()
    open(k, "wb").write(b)
    r = tool(io_tool, "load-ckpt", k)
    check(r.returncode == 0 and r.stdout.startswith(b"plan plan-X epoch 4 "),
          "re-laid-out checkpoint: %r" % r.stderr)


def torch_checks(io_tool, d):
    import torch

    dt = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
          "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
          "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
    for name, attr in [("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"),
                       ("F8_E5M2", "float8_e5m2"), ("F8_E4M3", "float8_e4m3fn")]:
        if hasattr(torch, attr):
            dt[name] = getattr(torch, attr)

    def to_torch(dtype, shape, data):
        if not data:
            return torch.empty(shape, dtype=dt[dtype])
        return torch.frombuffer(bytearray(data), dtype=dt[dtype]).reshape(shape)

    def to_bytes(t):
        return bytes(t.contiguous().reshape(-1).view(torch.uint8).tolist())

    c = os.path.join(d, "c.safetensors")
    r = tool(io_tool, "sample", c)
    check(r.returncode == 0, "io_tool sample")
    _, _, _, tensors = read(c)
    got = {n: to_torch(*v[:3]) for n, v in tensors.items() if v[0] in dt}
    check(torch.equal(got["known.f32"], torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5),
          "known.f32")
    check(torch.equal(got["known.i64"], torch.arange(-2, 3)), "known.i64")
    check(torch.equal(got["known.bf16"], torch.tensor([1.0, -2.0], dtype=torch.bfloat16)),
          "known.bf16")
    check(torch.equal(got["known.f16"], torch.tensor([0.5, 1.0, -float("inf")],
                                                     dtype=torch.float16)), "known.f16")
    check(got["known.f64"].shape == () and got["known.f64"].item() == -0.25, "known.f64")
    check(torch.equal(got["known.bool"], torch.tensor([[True, False], [False, True]])),
          "known.bool")
    check(got["empty"].shape == (0, 3), "empty")

    g = torch.Generator().manual_seed(0)
    src = {
        "layer1.0.conv1.weight": torch.randn(4, 3, 3, 3, generator=g),
        "bn1.running_var": torch.rand(4, generator=g).half(),
        "fc.weight": torch.randn(10, 4, generator=g).bfloat16(),
        "bn1.num_batches_tracked": torch.tensor(391),
        "scale": torch.tensor(0.125, dtype=torch.float64),
        "none": torch.zeros(0, 5),
    }
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.float64: "F64"}
    p = os.path.join(d, "t.safetensors")
    open(p, "wb").write(serialize(
        {n: (names[t.dtype], list(t.shape), to_bytes(t)) for n, t in src.items()}, {"f": "pt"}))
    q = os.path.join(d, "tq.safetensors")
    r = tool(io_tool, "rewrite", p, q)
    check(r.returncode == 0 and open(q, "rb").read() == open(p, "rb").read(),
          "nnc rewrites torch's tensors byte for byte")
    _, _, _, back = read(q)
    for n, t in src.items():
        check(torch.equal(to_torch(*back[n][:3]), t), "torch round trip of " + n)


def main():
    args = sys.argv[1:]
    use_torch = args[:1] == ["--torch"]
    if use_torch:
        args = args[1:]
        try:
            import torch  # noqa: F401
        except ImportError:
            print("skipped: torch is not importable by", sys.executable)
            return 77
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="nnc-io-py-") as d:
        (torch_checks if use_torch else format_checks)(args[0], d)
    if failures:
        print("%d checks failed" % failures, file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
