"""The reader in a browser: a static folder (page, model, onnxruntime-web, the preprocessing in plain JavaScript)
that reads digits on the device itself, offline once loaded. `build.run(WebConfig)` writes it."""
