"""Static check: every op of an exported graph is one TensorRT's ONNX parser supports.

Runs without TensorRT (in CI), so an op that would break `export-engine --format tensorrt`
is caught when the graph changes, not on the first GPU machine.
"""
from __future__ import annotations

from pathlib import Path

# Operators marked supported ("Y") for the default ONNX domain in onnx-tensorrt's
# docs/operators.md (TensorRT 10.x and 11.x parsers). Ops listed there as "N" are deliberately
# absent: among them AffineGrid, the Bitwise* ops, the window ops (Blackman/Hamming/HannWindow),
# CenterCropPad, Compress, DynamicQuantizeLinear, DFT, STFT, MelWeightMatrix, sequence ops,
# Bernoulli, ConvInteger, MatMulInteger, Multinomial, Unique, StringNormalizer, TfIdfVectorizer.
TRT_OPSETS = range(9, 21)  # the parser documents opsets 9-20 of the default domain
TRT_SUPPORTED_ONNX_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool
BatchNormalization Cast CastLike
Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos
Cosh CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum
Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements GatherND Gelu Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization HardSigmoid HardSwish Hardmax Identity If
ImageScaler InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less
LessOrEqual Log LogSoftmax Loop LpNormalization LpPool MatMul Max MaxPool Mean
MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or PRelu
Pad ParametricSoftplus Pow QuantizeLinear RNN RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RoiAlign Round ScaledTanh Scan Scatter
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile
TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Supported with restrictions that matter for these graphs (same source).
TRT_RESTRICTIONS = {
    "Cast": "UINT8 only as a network input cast to FLOAT (the vision graph's frames input)",
    "Resize": "modes nearest/linear; align_corners supported (the U-Net upsampling)",
    "Mod": "fmod=0 on integers (shape arithmetic)",
}


def op_types(model) -> dict[str, int]:
    """{domain::op or op: count} over the graph and every subgraph of `model`
    (an onnx.ModelProto or a path)."""
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    if model.functions:  # dynamo exports may keep local functions: check what they expand to
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    counts: dict[str, int] = {}

    def visit(graph) -> None:
        for node in graph.node:
            key = (node.op_type if node.domain in ("", "ai.onnx")
                   else f"{node.domain}::{node.op_type}")
            counts[key] = counts.get(key, 0) + 1
            for attr in node.attribute:
                for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                    visit(sub)
    visit(model.graph)
    return counts


def unsupported_ops(model) -> list[str]:
    """Op types of `model` TensorRT's ONNX parser does not support (custom domains included)."""
    return sorted(op for op in op_types(model) if op not in TRT_SUPPORTED_ONNX_OPS)


def default_opset(model) -> int | None:
    """The default-domain opset `model` (an onnx.ModelProto or a path) imports."""
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def check_tensorrt_ops(model, name: str = "graph") -> None:
    """Raise ValueError naming the offending op types or opset, if any."""
    bad = unsupported_ops(model)
    if bad:
        raise ValueError(f"{name}: ops not supported by TensorRT's ONNX parser: {', '.join(bad)}")
    opset = default_opset(model)
    if opset is not None and opset not in TRT_OPSETS:
        raise ValueError(f"{name}: opset {opset} is outside the {TRT_OPSETS.start}-"
                         f"{TRT_OPSETS.stop - 1} that TensorRT's ONNX parser documents")
