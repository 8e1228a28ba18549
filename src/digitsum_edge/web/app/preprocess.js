// Camera frame -> MNIST-like 28x28, step for step as digitsum_edge/vision/preprocess.py (its docstring gives each
// step's reason; the numbers in comments are those steps). The OpenCV functions it calls come from cvlite.js, which
// does what OpenCV does in plain JavaScript (OpenCV.js's API, so OpenCV.js itself would also do), so the browser's
// 28x28 image equals Python's; tests/test_web_parity.py runs both on the same frames and fails on drift. Settings
// and constants come from digitsum.json, written from the Python module at `digitsum-edge web`.
// Ported from vision/frame.py sha256:d472ff0b93a134b1, vision/preprocess.py sha256:4898644c90b6764a,
// vision/marks.py sha256:5bed188e687014bb and (stills.js) vision/stills.py sha256:f4b85e9668e74c63 (first 16 hex
// digits; tests/test_web.py fails when one of these files changes, until the change is ported and these updated).
"use strict";

// Python's round(): halves to the even neighbour (Math.round sends them up).
function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// A scope that deletes every Mat made in it (OpenCV.js's memory is not garbage-collected; cvlite's is).
class Mats {
  constructor(cv) { this.cv = cv; this.all = []; }
  keep(m) { this.all.push(m); return m; }
  mat(rows, cols, value = 0) { return this.keep(new this.cv.Mat(rows, cols, this.cv.CV_8UC1, new this.cv.Scalar(value))); }
  like(m) { return this.keep(new this.cv.Mat()); }
  crop(m, x, y, w, h) {  // a copy: filters on a numpy slice see no pixels beyond it, so neither may these
    if (x === 0 && y === 0 && w === m.cols && h === m.rows) return m;  // all of it: no copy (crops are read only)
    const view = m.roi(new this.cv.Rect(x, y, w, h));
    const copy = this.like();
    view.copyTo(copy);  // (OpenCV.js's clone() of a region keeps the parent's row step: its .data is wrong)
    view.delete();
    return copy;
  }
  ones(w, h) { return this.keep(this.cv.Mat.ones(h, w, this.cv.CV_8UC1)); }
  rect(w, h) { return this.keep(this.cv.getStructuringElement(this.cv.MORPH_RECT, new this.cv.Size(w, h))); }
  delete() { for (const m of this.all) if (!m.isDeleted()) m.delete(); this.all = []; }
}

function roiBox(height, width, fraction) {
  // the central square covering `fraction` of the shorter side, as [x, y, w, h]
  const shorter = Math.min(height, width);
  const side = Math.max(1, Math.min(shorter, pyRound(shorter * fraction)));
  return [Math.floor((width - side) / 2), Math.floor((height - side) / 2), side, side];
}

function histogram(m) {
  const hist = new Float64Array(256), d = m.data;
  for (let i = 0; i < d.length; i++) hist[d[i]] += 1;
  return hist;
}

function searchsorted(cumulative, value) {  // numpy's searchsorted, side "left": first index with cum >= value
  let i = 0;
  while (i < cumulative.length && cumulative[i] < value) i++;
  return i;
}

function cumsum(hist) {
  const out = new Float64Array(hist.length);
  let total = 0;
  hist.forEach((v, i) => { total += v; out[i] = total; });
  return out;
}

function rectOf(r) { return [r.x, r.y, r.width, r.height]; }

function noise(m, bold) {
  // 6. the level noise alone reaches: the median; with `bold` ink that may cover half, at most 2.1x the quartile
  const cum = cumsum(histogram(m));
  const quartile = searchsorted(cum, cum[255] / 4), mid = searchsorted(cum, cum[255] / 2);
  return bold ? Math.min(mid, 2.1 * quartile) : mid;
}

function borderIsDark(gray) {
  // 2. in a whole picture the ink is the histogram's tail further from the border's median, twice as far (a blank
  // sheet lit from one side has two tails about as long)
  const d = gray.data, w = gray.cols, h = gray.rows;
  const edge = [];
  for (let x = 0; x < w; x++) edge.push(d[x], d[(h - 1) * w + x]);
  for (let y = 0; y < h; y++) edge.push(d[y * w], d[y * w + w - 1]);
  edge.sort((a, b) => a - b);
  const half = edge.length >> 1;
  const background = edge.length % 2 ? edge[half] : (edge[half - 1] + edge[half]) / 2;  // numpy's median
  const cum = cumsum(histogram(gray));
  const cdf = cum.map((v) => Math.fround(v / cum[255]));  // float32, as cv2.calcHist's counts are
  const low = searchsorted(cdf, 0.01), high = searchsorted(cdf, 0.99);
  return high - background > 2 * (background - low);
}

function borderMax(m) {  // the largest value on the image's four sides
  const d = m.data, w = m.cols, h = m.rows;
  let most = 0;
  for (let x = 0; x < w; x++) most = Math.max(most, d[x], d[(h - 1) * w + x]);
  for (let y = 0; y < h; y++) most = Math.max(most, d[y * w], d[y * w + w - 1]);
  return most;
}

class Preprocessor {
  constructor(cv, settings) {
    this.cv = cv;
    this.cfg = settings.config;  // PreprocessConfig's fields
    this.k = settings.constants;  // MNIST_SIZE, BOX, CENTRE, STROKE, FINE
    this.stills = settings.stills;  // vision/stills.py's constants (stills.js)
  }

  // rgba: {data, width, height} (an ImageData) -> {mnist: Uint8Array(784) | null, roi, box, reason, candidates}; a
  // still (roi 1) is searched for its digit's marks first (stills.js)
  prepare(rgba) {
    if (this.cfg.roi >= 1.0 && this.cfg.search) return DigitsumStills.prepareStill(this, rgba);
    return {...this.readRegion(rgba, null), candidates: []};
  }

  // steps 1-9 on one region: `given` ([x, y, w, h], read as the camera path reads its guide square), else the
  // central square of roi < 1, else (roi 1) the whole picture framed on the digit (read_region's `region`)
  readRegion(rgba, given) {
    const cv = this.cv, cfg = this.cfg, M = DigitsumMarks;
    const s = new Mats(cv);
    try {
      const whole = given === null && cfg.roi >= 1.0;  // the whole picture, any shape: its border is its own
      const roi = whole ? [0, 0, rgba.width, rgba.height] : given || roiBox(rgba.height, rgba.width, cfg.roi);
      const [x0, y0, rw, rh] = roi;
      const n = cfg.work_size;
      // 1. Region, grey, shrink to n on the longer side
      const region = whole ? s.keep(cv.matFromImageData(rgba)) : this.region(s, rgba, x0, y0, rw, rh);
      const grey = s.like();
      cv.cvtColor(region, grey, cv.COLOR_RGBA2GRAY);
      let gray = this.shrink(s, grey, n);  // (h, w) uint8, longer side n
      const k = pyRound(n * cfg.background) | 1;
      // 2. Ink colour
      if (cfg.ink === "light" ||
          (cfg.ink === "auto" && this.inkIsLight(s, gray) && (!whole || borderIsDark(gray)))) {
        const inverted = s.like();
        cv.bitwise_not(gray, inverted);
        gray = inverted;
      }
      // 3. Paper: a grey closing wider than any stroke erases the ink but keeps a shadow's edge where it is.
      const square = s.rect(k, k);
      let paper = this.morph(s, gray, cv.MORPH_CLOSE, square);
      const pad = whole ? Math.floor(k / 2) + 1 : 0;
      if (pad) {  // the paper continued all round, so that the closing finds paper beside a stroke at the border
        const padded = s.like();
        cv.copyMakeBorder(paper, padded, pad, pad, pad, pad, cv.BORDER_REPLICATE);
        const hole = padded.roi(new cv.Rect(pad, pad, gray.cols, gray.rows));
        gray.copyTo(hole);
        hole.delete();
        gray = padded;
        paper = this.morph(s, padded, cv.MORPH_CLOSE, square);
      }
      const inner = [pad, pad, gray.cols - 2 * pad, gray.rows - 2 * pad];  // the picture in `gray`
      // 4. Ink as the share of the paper's light it absorbs (0-255)
      const depth = s.like();
      cv.subtract(paper, gray, depth);
      const floor = s.like();
      cv.max(paper, s.mat(paper.rows, paper.cols, 16), floor);
      let ink = s.like();
      cv.divide(depth, floor, ink, 255);
      // 5. Ruled and squared paper
      let seen = s.crop(ink, ...inner);
      if (borderMax(seen) > 24) {
        ink = this.withoutRules(s, ink, n, inner, whole);
        seen = s.crop(ink, ...inner);
      }
      // 6. Threshold, contours, shadows' corners
      const otsuOut = s.like();
      const otsu = cv.threshold(seen, otsuOut, 0, 255, cv.THRESH_BINARY | cv.THRESH_OTSU);
      const noiseInk = noise(seen, whole), noiseGrey = noise(s.crop(depth, ...inner), whole);
      const level = Math.max(otsu, 255 * cfg.min_contrast, 3.0 * noiseInk);
      const minArea = (0.03 * n) ** 2;
      const hysteresis = whole ? cfg.picture_hysteresis : cfg.hysteresis;
      const mask = this.inkMask(s, ink, depth, level, noiseGrey, hysteresis, minArea, whole);
      const contours = s.keep(new cv.MatVector());
      const hierarchy = s.like();
      cv.findContours(mask, contours, hierarchy, cv.RETR_EXTERNAL, cv.CHAIN_APPROX_NONE);
      let blobs = [];
      for (let i = 0; i < contours.size(); i++) {
        const c = s.keep(contours.get(i));
        blobs.push({area: cv.contourArea(c) + cv.arcLength(c, true) / 2 + 1, rect: rectOf(cv.boundingRect(c)),
                    contour: c});
      }
      blobs = blobs.filter((b) => b.area >= minArea || Math.max(b.rect[2], b.rect[3]) >= 0.08 * n);
      if (!blobs.length) return {mnist: null, roi, box: null, reason: "blank"};
      if (blobs.length > cfg.max_blobs) return {mnist: null, roi, box: null, reason: "clutter"};
      const crossing = blobs.some((b) => Math.max(b.rect[2], b.rect[3]) >= cfg.min_size * n &&
                                         M.touchesEdge(b.rect, inner)) ? "touches edge" : "blank";
      const gradient = this.morph(s, paper, cv.MORPH_GRADIENT, s.ones(9, 9));
      const quarter = s.like();
      paper.copyTo(quarter);
      const q = quarter.data;  // (a Mat's data is a new view at every access: taken once)
      for (let i = 0; i < q.length; i++) q[i] >>= 2;
      const steps = s.like();
      cv.compare(gradient, quarter, steps, cv.CMP_GT);
      const stepped = cv.countNonZero(steps) > 0;  // only then can a mark be a shadow's corner
      const shadow = (b) => this.shadowCorner(s, b.contour, gray, paper, steps);
      // 7. The digit (marks.js)
      let box, chosen;
      if (whole) {
        if (stepped) blobs = blobs.filter((b) => !shadow(b));
        const group = M.pictureDigit(cv, blobs, inner, cfg.min_size * n);
        if (group === null) return {mnist: null, roi, box: null, reason: blobs.length ? crossing : "blank"};
        [box, chosen] = group;
      } else {
        let inside = blobs.filter((b) => !M.touchesEdge(b.rect, inner));
        if (stepped) inside = inside.filter((b) => !shadow(b));
        if (!inside.length) return {mnist: null, roi, box: null, reason: crossing};
        [box, chosen] = M.digitBlobs(M.firstLargest(inside), inside);
      }
      const marks = s.mat(gray.rows, gray.cols);
      const chosenVector = s.keep(new cv.MatVector());
      for (const c of chosen) chosenVector.push_back(c);
      cv.drawContours(marks, chosenVector, -1, new cv.Scalar(255), cv.FILLED);
      const [bx, by, bw, bh] = box;
      const f = Math.max(rw, rh) / n;
      const frameBox = [x0 + pyRound((bx - pad) * f), y0 + pyRound((by - pad) * f), Math.max(1, pyRound(bw * f)),
                        Math.max(1, pyRound(bh * f))];
      const longer = Math.max(bw, bh) / n;
      if (longer < cfg.min_size) return {mnist: null, roi, box: frameBox, reason: "too small"};
      if (longer > cfg.max_size && !whole) return {mnist: null, roi, box: frameBox, reason: "too large"};
      // 8. Crop, stretch the contrast, stroke width (in toMnist)
      const keep = s.like();
      cv.dilate(s.crop(marks, bx, by, bw, bh), keep, s.ones(3, 3), new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT,
                cv.morphologyDefaultBorderValue());
      const digit = s.like();
      cv.bitwise_and(s.crop(ink, bx, by, bw, bh), keep, digit);
      const core = cv.minMaxLoc(digit).maxVal;
      return {mnist: this.toMnist(s, this.stretch(s, digit, level * 0.5, core * 0.8), cfg.stroke), roi,
              box: frameBox, reason: ""};
    } finally {
      s.delete();
    }
  }

  region(s, rgba, x0, y0, w, h) {
    // the region's RGBA rows copied into a Mat: a quarter of the frame instead of all of it, then a crop
    const m = s.keep(new this.cv.Mat(h, w, this.cv.CV_8UC4)), d = m.data;
    const pixels = new Uint8Array(rgba.data.buffer, rgba.data.byteOffset, rgba.data.length);  // same type: a memcpy
    for (let y = 0; y < h; y++) {
      const start = ((y0 + y) * rgba.width + x0) * 4;
      d.set(pixels.subarray(start, start + 4 * w), 4 * w * y);
    }
    return m;
  }

  morph(s, src, op, kernel) {
    const cv = this.cv, out = s.like();
    cv.morphologyEx(src, out, op, kernel, new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT, cv.morphologyDefaultBorderValue());
    return out;
  }

  shrink(s, gray, n) {
    // 1. longer side n, aspect kept: exact halvings by pixel averaging, each followed by a 2x2 minimum, then linear
    // in integers (cv.resample: vision/resample.py)
    const cv = this.cv;
    const scale = n / Math.max(gray.rows, gray.cols);
    const th = Math.max(1, pyRound(gray.rows * scale)), tw = Math.max(1, pyRound(gray.cols * scale));
    while (gray.rows >= 2 * th && gray.cols >= 2 * tw) {
      const hh = Math.floor(gray.rows / 2), hw = Math.floor(gray.cols / 2);
      const halved = s.like(), eroded = s.like();
      cv.resize(s.crop(gray, 0, 0, 2 * hw, 2 * hh), halved, new cv.Size(hw, hh), 0, 0, cv.INTER_AREA);
      cv.erode(halved, eroded, s.ones(2, 2), new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT,
               cv.morphologyDefaultBorderValue());
      gray = eroded;
    }
    if (gray.rows !== th || gray.cols !== tw) {
      const out = s.like();
      cv.resample(gray, out, new cv.Size(tw, th), false);
      gray = out;
    }
    return gray;
  }

  inkIsLight(s, gray, tiles = 8) {
    // 2. the histogram's bright tail reaches further than its dark one, and it does so tile by tile
    const cv = this.cv;
    const cum = cumsum(histogram(gray));
    const total = cum[255];
    const cdf = cum.map((v) => Math.fround(v / total));  // float32, as cv2.calcHist's counts are
    const [low, mid, high] = [0.001, 0.5, 0.999].map((q) => searchsorted(cdf, q));
    if (high - mid <= mid - low) return false;
    const nh = Math.floor(gray.rows / tiles) * tiles, nw = Math.floor(gray.cols / tiles) * tiles;
    const th = nh / tiles, tw = nw / tiles;
    const mean = s.like();
    cv.resize(s.crop(gray, 0, 0, nw, nh), mean, new cv.Size(tiles, tiles), 0, 0, cv.INTER_AREA);
    const pixels = gray.data, means = mean.data, stride = gray.cols;
    let brighter = 0, darker = 0;
    for (let ty = 0; ty < tiles; ty++) {
      for (let tx = 0; tx < tiles; tx++) {
        let lo = 255, hi = 0;
        for (let y = ty * th; y < (ty + 1) * th; y++) {
          for (let x = tx * tw; x < (tx + 1) * tw; x++) {
            const v = pixels[y * stride + x];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
        }
        const m = means[ty * tiles + tx];
        brighter += hi - m;
        darker += m - lo;
      }
    }
    return brighter > darker;
  }

  inkMask(s, ink, depth, level, noiseGrey, hysteresis, minArea, whole) {
    // 6. ink above `level` and out of the noise, grown by hysteresis (not to a region's edge)
    const cv = this.cv;
    const above = s.like(), clear = s.like(), mask = s.like(), weak = s.like(), faint = s.like();
    cv.threshold(ink, above, level, 255, cv.THRESH_BINARY);
    cv.threshold(depth, clear, 2.0 * noiseGrey + 2, 255, cv.THRESH_BINARY);
    cv.bitwise_and(above, clear, mask);
    cv.threshold(ink, weak, hysteresis * level, 255, cv.THRESH_BINARY);
    cv.bitwise_and(weak, clear, faint);
    const labels = s.like(), stats = s.like(), centroids = s.like();
    const count = cv.connectedComponentsWithStats(faint, labels, stats, centroids, 8, cv.CV_32S);
    const clearPixels = new Float64Array(count);
    const lab = labels.data32S, m = mask.data;
    for (let i = 0; i < lab.length; i++) if (m[i] > 0) clearPixels[lab[i]] += 1;
    const joined = new Uint8Array(count);
    const st = stats.data32S;  // rows of x, y, w, h, area
    for (let i = 0; i < count; i++) {
      const [x, y, w, h] = [st[5 * i], st[5 * i + 1], st[5 * i + 2], st[5 * i + 3]];
      const inside = whole || (x > 0 && y > 0 && x + w < ink.cols && y + h < ink.rows);
      joined[i] = clearPixels[i] >= minArea / 3 && inside ? 255 : 0;
    }
    for (let i = 0; i < lab.length; i++) if (joined[lab[i]]) m[i] = 255;
    return mask;
  }

  withoutRules(s, ink, n, inner, whole) {
    // 5. thin marks that run straight, level or upright, for n/10 pixels and reach the region's edge; in a whole
    // picture only lines that repeat (two across it, or three at its border)
    const cv = this.cv, length = Math.floor(n / 10), M = DigitsumMarks;
    const found = [];
    for (const [thin, thick] of [[[length, 1], [length, 5]], [[1, length], [5, length]]]) {
      const kept = this.morph(s, ink, cv.MORPH_OPEN, s.rect(...thin));
      const solid = this.morph(s, ink, cv.MORPH_OPEN, s.rect(...thick));
      const way = s.like();
      cv.subtract(kept, solid, way);
      found.push(way);
    }
    const lines = s.like();
    cv.max(found[0], found[1], lines);
    const outlines = (image) => {
      const marked = s.like(), contours = s.keep(new cv.MatVector()), hierarchy = s.like();
      cv.threshold(image, marked, 8, 255, cv.THRESH_BINARY);
      cv.findContours(marked, contours, hierarchy, cv.RETR_EXTERNAL, cv.CHAIN_APPROX_SIMPLE);
      const all = [];
      for (let i = 0; i < contours.size(); i++) all.push(s.keep(contours.get(i)));
      return all;
    };
    let rules = [];
    if (whole) {
      found.forEach((way, axis) => {
        const edge = outlines(way).filter((c) => M.touchesEdge(rectOf(cv.boundingRect(c)), inner));
        const across = edge.filter((c) => rectOf(cv.boundingRect(c))[2 + axis] >= 0.9 * inner[2 + axis]);
        if (across.length >= 2 || edge.length >= 3) rules = rules.concat(edge);
      });
    } else {
      rules = outlines(lines).filter((c) => M.touchesEdge(rectOf(cv.boundingRect(c)), inner));
    }
    if (!rules.length) return ink;
    const vector = s.keep(new cv.MatVector());
    for (const c of rules) vector.push_back(c);
    const keep = s.mat(ink.rows, ink.cols), ruled = s.like(), out = s.like();
    cv.drawContours(keep, vector, -1, new cv.Scalar(255), cv.FILLED);
    cv.bitwise_and(lines, keep, ruled);
    cv.subtract(ink, ruled, out);
    return out;
  }

  shadowCorner(s, contour, gray, paper, steps) {
    // 6. a mark that is not darker than what lies around it on every side: the corner of a shadow
    const cv = this.cv, pts = contour.data32S, r = 5;
    const xs = [], ys = [];
    for (let i = 0; i < pts.length; i += 2) { xs.push(pts[i]); ys.push(pts[i + 1]); }
    const x0 = Math.max(Math.min(...xs) - r - 1, 0), y0 = Math.max(Math.min(...ys) - r - 1, 0);
    const x1 = Math.min(Math.max(...xs) + r + 2, gray.cols), y1 = Math.min(Math.max(...ys) + r + 2, gray.rows);
    const w = x1 - x0, h = y1 - y0;
    const g = s.crop(gray, x0, y0, w, h), p = s.crop(paper, x0, y0, w, h);
    const mark = s.mat(h, w);
    const one = s.keep(new cv.MatVector());
    one.push_back(contour);
    cv.drawContours(mark, one, -1, new cv.Scalar(255), cv.FILLED, cv.LINE_8, s.like(), 2147483647,
                    new cv.Point(-x0, -y0));
    const edge = this.morph(s, g, cv.MORPH_GRADIENT, s.ones(3, 3));
    const depth = s.like(), deepest = s.like(), near = s.like();
    cv.subtract(p, g, depth);
    cv.bitwise_and(depth, mark, deepest);
    cv.dilate(deepest, near, s.ones(7, 7), new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT,
              cv.morphologyDefaultBorderValue());
    const edges = edge.data, nearest = near.data;
    let flat = 0;
    for (let i = 0; i < xs.length; i++) {
      const at = (ys[i] - y0) * w + (xs[i] - x0);
      if (edges[at] < 0.12 * nearest[at]) flat += 1;
    }
    if (flat / xs.length > 0.15) return true;  // the outline runs through flat grey
    const onStep = s.like();
    cv.bitwise_and(s.crop(steps, x0, y0, w, h), mark, onStep);
    const along = cv.countNonZero(onStep) / Math.max(cv.countNonZero(mark), 1);
    if (along > 0.5) return true;  // it lies along the shadow's edge
    const size = cv.minAreaRect(contour).size;
    const [rw, rh] = [size.width, size.height];
    if (along < 0.25 || Math.max(rw, rh) < 4 * Math.min(rw, rh) || cv.contourArea(contour) < 0.5 * rw * rh) {
      return false;  // not a straight sliver
    }
    const wide = s.like(), narrow = s.like(), ring = s.like();
    cv.dilate(mark, wide, s.ones(2 * r + 1, 2 * r + 1), new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT,
              cv.morphologyDefaultBorderValue());
    cv.dilate(mark, narrow, s.ones(5, 5), new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT,
              cv.morphologyDefaultBorderValue());
    cv.subtract(wide, narrow, ring);
    const inkGrey = cv.mean(g, mark)[0], paperGrey = cv.mean(p, mark)[0];
    const half = Math.fround((inkGrey + paperGrey) / 2);  // numpy compares float32 pixels with a float32 scalar
    let dark = 0, count = 0;
    const around = ring.data, grey = g.data;
    for (let i = 0; i < around.length; i++) {
      if (around[i] > 0) { count += 1; if (grey[i] < half) dark += 1; }
    }
    return count > 0 && dark / count > 0.35;  // dark on one side: a shadow's edge
  }

  stretch(s, ink, low, high) {
    // 8. ink `low` -> 0 and `high` -> 255, in float32 like numpy
    const scale = Math.fround(255.0 / Math.max(high - low, 1.0)), l = Math.fround(low);
    const lut = new Uint8Array(256);
    for (let i = 0; i < 256; i++) {
      const v = Math.fround(Math.fround(i - l) * scale);
      lut[i] = Math.trunc(Math.min(Math.max(v, 0), 255));
    }
    const out = s.like();
    ink.copyTo(out);
    const pixels = out.data;
    for (let i = 0; i < pixels.length; i++) pixels[i] = lut[pixels[i]];
    return out;
  }

  strokeWidth(s, mask) {
    const cv = this.cv;
    const contours = s.keep(new cv.MatVector()), hierarchy = s.like();
    cv.findContours(mask, contours, hierarchy, cv.RETR_LIST, cv.CHAIN_APPROX_NONE);
    let perimeter = 0;
    for (let i = 0; i < contours.size(); i++) perimeter += cv.arcLength(s.keep(contours.get(i)), true);
    return 2.0 * cv.countNonZero(mask) / Math.max(perimeter, 1.0);
  }

  toMnist(s, digit, stroke) {
    // 8-9. stroke width to MNIST's at 4x, 20x20 box keeping the aspect ratio, centre of mass to the centre
    const cv = this.cv, K = this.k;
    let h = digit.rows, w = digit.cols;
    if (stroke > 0) {
      const bigScale = K.FINE * K.BOX / Math.max(h, w);
      let big = s.like();
      cv.resample(digit, big, new cv.Size(Math.max(1, pyRound(w * bigScale)), Math.max(1, pyRound(h * bigScale))),
                  bigScale < 1);
      const mask = s.like();
      cv.threshold(big, mask, 127, 255, cv.THRESH_BINARY);
      const width = this.strokeWidth(s, mask), target = stroke * K.FINE;
      const goal = width < 0.75 * target ? target : width > 1.7 * target ? 1.4 * target : width;
      if (goal !== width) {
        const radius = pyRound(Math.abs(goal - width) / 2);
        if (radius) {
          const element = s.keep(cv.getStructuringElement(cv.MORPH_ELLIPSE, new cv.Size(2 * radius + 1, 2 * radius + 1)));
          const changed = s.like();
          (width < goal ? cv.dilate : cv.erode)(big, changed, element, new cv.Point(-1, -1), 1, cv.BORDER_CONSTANT,
                                                cv.morphologyDefaultBorderValue());
          big = changed;
        }
      }
      digit = big;
      h = big.rows;
      w = big.cols;
    }
    const scale = K.BOX / Math.max(h, w);
    const size = [Math.max(1, pyRound(w * scale)), Math.max(1, pyRound(h * scale))];
    const small = s.like();
    cv.resample(digit, small, new cv.Size(size[0], size[1]), scale < 1);
    const m = cv.moments(small, false);
    const [cx, cy] = m.m00 <= 0 ? [size[0] / 2, size[1] / 2] : [m.m10 / m.m00, m.m01 / m.m00];
    const dx = pyRound(K.CENTRE - cx), dy = pyRound(K.CENTRE - cy);  // whole pixels: no blur
    const side = K.MNIST_SIZE, out = new Uint8Array(side * side), pixels = small.data;
    for (let y = 0; y < small.rows; y++) {
      for (let x = 0; x < small.cols; x++) {
        const tx = x + dx, ty = y + dy;
        if (tx >= 0 && ty >= 0 && tx < side && ty < side) out[ty * side + tx] = pixels[y * small.cols + x];
      }
    }
    return out;
  }
}

self.DigitsumPreprocess = {Preprocessor, Mats, roiBox, pyRound, rectOf, noise, borderIsDark, borderMax};
