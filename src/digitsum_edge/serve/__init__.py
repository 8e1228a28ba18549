"""`digitsum-edge serve`: the model as an HTTP service on Ray Serve (one ONNX Runtime session per replica,
Ray Serve's own request batching), with the Open Inference Protocol (KServe v2) and a webcam page."""
