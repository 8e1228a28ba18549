// The reader in the page: frame -> preprocessing (preprocess.js) -> the model (onnxruntime-web, wasm) -> a reading
// with the fields of a `live` JSON line. What it knows of the model (input names, normalisation, class counts)
// and of reading (roi, ink, min_confidence) comes from digitsum.json, written by Python at `digitsum-edge web`.
"use strict";

function softmax(logits) {
  const top = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - top));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

class DigitReader {
  static async open(base = "./") {
    const settings = await (await fetch(new URL("digitsum.json", new URL(base, location.href)))).json();
    const vendor = new URL("vendor/", new URL(base, location.href)).href;  // onnxruntime-web wants an absolute URL
    ort.env.wasm.wasmPaths = vendor;
    ort.env.wasm.numThreads = 1;  // one wasm thread: what a phone gives a page without cross-origin isolation
    ort.env.wasm.proxy = false;
    const modelUrl = new URL(settings.model.file, new URL(base, location.href));
    const session = await ort.InferenceSession.create(modelUrl.href, {executionProviders: ["wasm"],
                                                                     graphOptimizationLevel: "all"});
    return new DigitReader(settings, session, self.cvlite);
  }

  constructor(settings, session, cv) {
    this.settings = settings;
    this.model = settings.model;
    this.session = session;
    this.cv = cv;
    this.minConfidence = settings.reading.min_confidence;
    this.preprocessConfig = {...settings.preprocess.config, roi: settings.reading.roi, ink: settings.reading.ink,
                             search: settings.reading.search};
    this.preprocessor = new DigitsumPreprocess.Preprocessor(cv, {config: this.preprocessConfig,
                                                                 constants: settings.preprocess.constants,
                                                                 stills: settings.preprocess.stills});
  }

  setRoi(roi) {  // e.g. 1.0 for a still photo framed on the digit (predict's default)
    this.preprocessConfig.roi = roi;
  }

  useSettings({roi, ink, min_confidence}) {  // a server's reading settings (its ReadingSettings.as_json()), so
    // that this device reads as the server does
    if (roi !== undefined && roi !== null) this.preprocessConfig.roi = roi;
    if (ink !== undefined && ink !== null) this.preprocessConfig.ink = ink;
    if (min_confidence !== undefined && min_confidence !== null) this.minConfidence = min_confidence;
  }

  prepare(imageData) {
    const started = performance.now();
    const prepared = this.preprocessor.prepare(imageData);
    prepared.prepare_ms = performance.now() - started;
    return prepared;
  }

  // (N*784) uint8 images, white digit on black, and one rand each -> {digit: [N][10], sum: [N][num_sums]} logits
  async infer(pixels, rands) {
    const m = this.model, count = rands.length, size = m.input_size;
    const image = new Float32Array(pixels.length);
    const mean = Math.fround(m.mean), std = Math.fround(m.std);  // float32 throughout, like numpy
    for (let i = 0; i < pixels.length; i++) image[i] = Math.fround(Math.fround(pixels[i] / 255) - mean) / std;
    const [imageName, randName] = m.inputs;
    const feeds = {
      [imageName]: new ort.Tensor("float32", image, [count, 1, size, size]),
      [randName]: new ort.Tensor("int64", BigInt64Array.from(rands, (r) => BigInt(r)), [count]),
    };
    const out = await this.session.run(feeds);
    const [digitName, sumName] = m.outputs;
    const rows = (tensor, width) => Array.from({length: count}, (_, i) => tensor.data.slice(i * width, (i + 1) * width));
    return {digit: rows(out[digitName], m.num_digits), sum: rows(out[sumName], m.num_sums)};
  }

  // one frame (ImageData) and a rand -> the fields of a `live` JSON line, plus the 28x28 image read
  async read(imageData, rand) {
    if (!Number.isInteger(rand) || rand < 0 || rand >= this.model.num_rand) {
      throw new Error(`rand must be an integer in 0-${this.model.num_rand - 1}, got ${rand}`);
    }
    const prepared = this.prepare(imageData);
    const reading = {found: prepared.mnist !== null, digit: null, digit_confidence: null, rand, sum: null,
                     sum_confidence: null, box: prepared.box, roi: prepared.roi, reason: prepared.reason || null,
                     uncertain: false, prepare_ms: prepared.prepare_ms, infer_ms: 0, mnist: prepared.mnist,
                     candidates: []};
    if (reading.found) {
      const started = performance.now();
      // a still with several digit-like marks (stills.js): all read in one batch, the model's confidence weighs in
      const found = prepared.candidates.filter((c) => c.prep.mnist !== null);
      const batch = found.length > 1 ? found.map((c) => c.prep.mnist) : [prepared.mnist];
      const pixels = new Uint8Array(784 * batch.length);
      batch.forEach((m, i) => pixels.set(m, 784 * i));
      const logits = await this.infer(pixels, batch.map(() => rand));
      reading.infer_ms = performance.now() - started;
      let row = 0;
      found.forEach((c, i) => {
        const probs = softmax(logits.digit[found.length > 1 ? i : 0]);
        c.digit = argmax(probs);
        c.confidence = probs[c.digit];
      });
      if (found.length > 1) {  // geometry score times digit confidence, the first of the highest
        found.forEach((c) => { c.chosen = false; });
        found.forEach((c, i) => { if (c.score * c.confidence > found[row].score * found[row].confidence) row = i; });
        found[row].chosen = true;
        reading.mnist = found[row].prep.mnist;
        reading.box = found[row].prep.box;
      }
      const chosen = (prepared.candidates || []).find((c) => c.chosen);
      if (chosen && DigitsumStills.doubtful(this.preprocessor.stills, chosen, chosen.confidence)) {
        // a still's guide square, unsure: no digit (stills.py's doubtful)
        chosen.chosen = false;
        chosen.prep = {...chosen.prep, reason: "unsteady"};
        Object.assign(reading, {found: false, box: null, reason: "unsteady", mnist: null});
      } else {
        const digitProbs = softmax(logits.digit[row]), sumProbs = softmax(logits.sum[row]);
        reading.digit = argmax(digitProbs);
        reading.digit_confidence = digitProbs[reading.digit];
        reading.sum = argmax(sumProbs);
        reading.sum_confidence = sumProbs[reading.sum];
        reading.uncertain = reading.digit_confidence < this.minConfidence;
      }
    }
    reading.candidates = (prepared.candidates || []).map(DigitsumStills.candidateDict);
    reading.ms = reading.prepare_ms + reading.infer_ms;
    return reading;
  }
}

self.DigitReader = DigitReader;
