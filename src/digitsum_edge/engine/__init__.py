"""Layer 1, the engine: the one door to an exported model (`factory.open_model` by file) and the runtimes
behind it: ONNX Runtime (onnx_runtime.py), LiteRT and TFLite Micro (litert.py), all subclasses of
`backend.Backend`; builtin.py locates the model that ships in the package. Nothing outside this folder opens a
runtime. It imports neither vision/ nor apps/. A new runtime goes here: a Backend subclass in its own module and
its suffix in factory.py."""
