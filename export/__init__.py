"""Export PixelPlayer's two inference graphs: ONNX (onnx_export), TensorRT plans
(tensorrt_build), a Triton model repository (triton), the TensorRT op check (trt_ops) and
the `export-engine` command line (cli:main)."""
