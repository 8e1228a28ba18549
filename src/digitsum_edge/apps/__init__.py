"""Layer 3, the applications above the engine and vision: the reader API (reader.py: `load`, `DigitReader`,
`Reading`), `live` and `predict` (their CLI in command.py), where frames come from (sources.py, images.py), what
happens between readings (policy.py), the annotated frame (overlay.py), scoring on labelled photos (score.py) and
the timed pipeline (profile.py). A new reading command goes here. serve/ and web/ are applications of this
reader too, each in a folder of its own."""
