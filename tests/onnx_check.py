#!/usr/bin/python3
"""Checks an ONNX model that `nnrun export --format onnx` wrote (tests/onnx.sh): onnx's checker
(full_check) and strict shape inference, the metadata nnc records, and the logits of the graph,
computed here by a small float64 evaluator of exactly the ONNX ops the exporter emits, against
the logits nnrun computed (`nnrun eval --logits`) on the same normalized images.

  onnx_check.py MODEL.onnx LOGITS.safetensors [--rtol R] [--weights fp16]

--weights fp16: the model comes from an fp16 plan, so its weights (not the exporter's constants)
must be fp16 values widened, and its metadata must say so.

The evaluator knows each op's attributes and refuses any other (an exporter writing an attribute
it does not read would otherwise pass unnoticed). The logits must agree within
RTOL * max(1, max |logit|) elementwise (fp32 by default), and give the same class per image
wherever nnrun's top two logits are further apart than that."""
import json
import math
import struct
import sys

import numpy as np

try:
    import onnx
    from onnx import numpy_helper
except ImportError:
    print("skipped: python3-onnx is not installed (scripts/setup.sh installs it)")
    sys.exit(77)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    out = {}
    kinds = {"F32": np.float32, "I32": np.int32, "F16": np.float16}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=kinds[t["dtype"]]).reshape(t["shape"])
    return out


def windows(x, kh, kw, sh, sw):
    """[N, C, H, W] -> [N, C, OH, OW, kh, kw] views of the windows at strides sh, sw."""
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return v[:, :, ::sh, ::sw]


def pad_hw(x, pads, value):
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def attrs(node, allowed):
    got = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    extra = set(got) - set(allowed)
    if extra:
        raise SystemExit(f"FAIL: node {node.name} ({node.op_type}) has attributes {sorted(extra)} the evaluator does not read")
    return {**allowed, **got}


def conv(x, w, b, a):
    kh, kw = a["kernel_shape"]
    assert tuple(w.shape[2:]) == (kh, kw), "kernel_shape differs from the weight's"
    g = a["group"]
    v = windows(pad_hw(x, a["pads"], 0.0), kh, kw, *a["strides"])
    n, c, oh, ow = v.shape[:4]
    o = w.shape[0]
    if g == 1:  # im2col: one matrix product
        cols = v.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
        y = (cols @ w.reshape(o, -1).T).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
    else:
        v = v.reshape(n, g, c // g, oh, ow, kh, kw)
        wg = w.reshape(g, o // g, c // g, kh, kw)
        y = np.einsum("ngchwij,gocij->ngohw", v, wg, optimize=True).reshape(n, o, oh, ow)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool(x, a, kind):
    kh, kw = a["kernel_shape"]
    if kind == "max":
        return windows(pad_hw(x, a["pads"], -np.inf), kh, kw, *a["strides"]).max(axis=(4, 5))
    assert a["count_include_pad"] == 1, "nnc's average pooling counts the padding"
    return windows(pad_hw(x, a["pads"], 0.0), kh, kw, *a["strides"]).mean(axis=(4, 5))


erf = np.vectorize(math.erf, otypes=[np.float64])


def run(model, x):
    env = {"input": x.astype(np.float64)}
    for t in model.graph.initializer:
        env[t.name] = numpy_helper.to_array(t).astype(np.float64)
    for nd in model.graph.node:
        i = [env[n] if n else None for n in nd.input]
        op = nd.op_type
        if op == "Conv":
            a = attrs(nd, {"kernel_shape": None, "strides": [1, 1], "pads": [0, 0, 0, 0], "group": 1})
            y = conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "BatchNormalization":
            a = attrs(nd, {"epsilon": 1e-5})
            x0, s, b, m, v = i
            sh = (1, -1) + (1,) * (x0.ndim - 2)
            y = (x0 - m.reshape(sh)) / np.sqrt(v.reshape(sh) + np.float64(np.float32(a["epsilon"]))) * s.reshape(sh) + b.reshape(sh)
        elif op == "Gemm":
            a = attrs(nd, {"transA": 0, "transB": 0, "alpha": 1.0, "beta": 1.0})
            A = i[0].T if a["transA"] else i[0]
            B = i[1].T if a["transB"] else i[1]
            y = a["alpha"] * (A @ B) + (a["beta"] * i[2] if len(i) > 2 else 0)
        elif op in ("MaxPool", "AveragePool"):
            a = attrs(nd, {"kernel_shape": None, "strides": [1, 1], "pads": [0, 0, 0, 0], "count_include_pad": 0}
                      if op == "AveragePool" else {"kernel_shape": None, "strides": [1, 1], "pads": [0, 0, 0, 0]})
            y = pool(i[0], a, "max" if op == "MaxPool" else "avg")
        elif op == "GlobalAveragePool":
            attrs(nd, {})
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            a = attrs(nd, {"axis": 1})
            y = i[0].reshape(int(np.prod(i[0].shape[:a["axis"]])), -1)
        elif op == "Concat":
            a = attrs(nd, {"axis": None})
            y = np.concatenate(i, axis=a["axis"])
        elif op == "Softmax":
            a = attrs(nd, {"axis": -1})
            e = np.exp(i[0] - i[0].max(axis=a["axis"], keepdims=True))
            y = e / e.sum(axis=a["axis"], keepdims=True)
        elif op in ("Relu", "Tanh", "Erf", "Identity"):
            attrs(nd, {})
            y = {"Relu": lambda t: np.maximum(t, 0), "Tanh": np.tanh, "Erf": erf, "Identity": lambda t: t}[op](i[0])
        elif op == "Clip":
            attrs(nd, {})
            y = np.clip(i[0], i[1] if len(i) > 1 and i[1] is not None else -np.inf, i[2] if len(i) > 2 else np.inf)
        elif op in ("Add", "Mul", "Div"):
            attrs(nd, {})
            y = {"Add": np.add, "Mul": np.multiply, "Div": np.divide}[op](i[0], i[1])
        else:
            raise SystemExit(f"FAIL: node {nd.name}: the evaluator does not know op {op}")
        assert len(nd.output) == 1
        env[nd.output[0]] = y
    return env[model.graph.output[0].name]


def main():
    args = sys.argv[1:]
    rtol, weights = 1e-4, "float32"
    if "--rtol" in args:
        k = args.index("--rtol")
        rtol = float(args[k + 1])
        del args[k:k + 2]
    if "--weights" in args:
        k = args.index("--weights")
        weights = args[k + 1]
        del args[k:k + 2]
    path, ref_path = args
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    meta = {p.key: p.value for p in model.metadata_props}
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    problems = []
    if model.producer_name != "nnc":
        problems.append(f"producer_name is {model.producer_name!r}")
    if not opset or opset[0] < 13:
        problems.append(f"opset {opset}")
    for key in ("nnc.model", "nnc.normalize.mean", "nnc.normalize.std"):
        if key not in meta:
            problems.append(f"no metadata {key}")
    for key in ("nnc.normalize.mean", "nnc.normalize.std"):
        if key in meta and len([float(v) for v in meta[key].split(",")]) != 3:
            problems.append(f"{key} is {meta[key]!r}, not three numbers")
    if model.graph.name != meta.get("nnc.model"):
        problems.append(f"graph name {model.graph.name!r}")
    if weights == "fp16":
        if "widened" not in meta.get("nnc.weights", ""):
            problems.append("an fp16 plan's export does not say its weights were widened")
        for t in model.graph.initializer:
            a = numpy_helper.to_array(t)
            if not t.name.startswith("nnc.const.") and not np.array_equal(a, a.astype(np.float16).astype(np.float32)):
                problems.append(f"initializer {t.name} holds values an fp16 plan cannot store")
                break
    if [i.name for i in model.graph.input] != ["input"] or [o.name for o in model.graph.output] != ["logits"]:
        problems.append("the graph's input and output are not 'input' and 'logits'")
    used = {n for nd in model.graph.node for n in nd.input}
    unused = [t.name for t in model.graph.initializer if t.name not in used]
    if unused:
        problems.append(f"initializers no node reads: {unused[:5]}")
    if any(t.data_type != onnx.TensorProto.FLOAT for t in model.graph.initializer):
        problems.append("an initializer is not float32")
    ref = read_safetensors(ref_path)
    got = run(model, ref["input"])
    want = ref["logits"].astype(np.float64)
    if got.shape != want.shape:
        problems.append(f"logits of shape {got.shape}, nnrun's {want.shape}")
    else:
        scale = max(1.0, float(np.abs(want).max()))
        err = float(np.abs(got - want).max())
        tol = rtol * scale
        top2 = np.sort(want, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 2 * tol
        flips = int((clear & (got.argmax(1) != want.argmax(1))).sum())
        print(f"{path}: {len(model.graph.node)} nodes, logits max |onnx - nnrun| = {err:.3g} "
              f"(tolerance {tol:.3g}, logit scale {scale:.3g}), {flips} class changes")
        if not err <= tol:
            problems.append(f"logits differ from nnrun's by {err:.3g} > {tol:.3g}")
        if flips:
            problems.append(f"{flips} images change class")
    for p in problems:
        print(f"FAIL {path}: {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
