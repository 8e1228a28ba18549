"""Layer 2, vision: a picture -> the model's 28x28 input (preprocess.py; which marks are the digit: marks.py; a
still searched whole: stills.py; resizes that give the same pixels everywhere: resample.py) and the reading
settings (settings.py: `ReadingSettings`). numpy and OpenCV only: it imports neither the engine nor the apps, so
train/, synth/ and web/ use it without a runtime. A new preprocessing step goes here (and into its browser port,
web/app/)."""
