// A still picture read whole (roi 1): the one digit anywhere in it, step for step as digitsum_edge/vision/stills.py
// (its docstring and docs/stills.md give the reasons): marks looked for at SEARCH pixels, each group inside the
// picture read through the region path on a square around it, a crop read whole as before. The candidates that hold
// a digit are weighed by the reader (reader.js) with the model's confidence.
// Ported from vision/stills.py (tests/test_web.py checks its digest, named in preprocess.js).
"use strict";

function stillGroups(pre, s, gray, K) {
  // the picture's groups of marks: [{box (frame pixels), ink (search pixels), within}], and frame pixels per search pixel
  const cv = pre.cv, cfg = pre.cfg, M = DigitsumMarks, P = DigitsumPreprocess, n = K.SEARCH;
  let small = pre.shrink(s, gray, n);
  const h = small.rows, w = small.cols;
  if (cfg.ink === "light" || (cfg.ink === "auto" && pre.inkIsLight(s, small) && P.borderIsDark(small))) {
    const inverted = s.like();
    cv.bitwise_not(small, inverted);
    small = inverted;
  }
  const k = P.pyRound(n * K.PAPER) | 1;
  const square = s.rect(k, k);
  const pad = Math.floor(k / 2) + 1;  // the paper continued all round, so that a mark at the border has paper beyond it
  const padded = s.like();
  cv.copyMakeBorder(pre.morph(s, small, cv.MORPH_CLOSE, square), padded, pad, pad, pad, pad, cv.BORDER_REPLICATE);
  const hole = padded.roi(new cv.Rect(pad, pad, w, h));
  small.copyTo(hole);
  hole.delete();
  const paper = pre.morph(s, padded, cv.MORPH_CLOSE, square);
  const inner = [pad, pad, w, h];
  const depth = s.like(), floor = s.like(), share = s.like();
  cv.subtract(paper, padded, depth);
  cv.max(paper, s.mat(paper.rows, paper.cols, 16), floor);
  cv.divide(depth, floor, share, 255);
  // rules: inside, every thin straight line that reaches the border; for a crop, lines that repeat
  let scene = share, crop = share;
  if (P.borderMax(s.crop(share, ...inner)) > 24) {
    scene = pre.withoutRules(s, share, n, inner, false);
    crop = pre.withoutRules(s, share, n, inner, true);
  }
  const noiseGrey = P.noise(s.crop(depth, ...inner), false);
  const minArea = (0.015 * n) ** 2;
  let blobs = [];
  for (const [inside, ink] of [[true, scene], [false, crop]]) {
    const seen = s.crop(ink, ...inner);
    const otsuOut = s.like();
    const otsu = cv.threshold(seen, otsuOut, 0, 255, cv.THRESH_BINARY | cv.THRESH_OTSU);
    const level = Math.max(Math.min(otsu, K.OTSU_CAP), 255 * cfg.min_contrast, 3.0 * P.noise(seen, false));
    const marked = pre.inkMask(s, ink, depth, level, noiseGrey, cfg.picture_hysteresis, minArea, !inside);
    const contours = s.keep(new cv.MatVector()), hierarchy = s.like();
    cv.findContours(marked, contours, hierarchy, cv.RETR_EXTERNAL, cv.CHAIN_APPROX_SIMPLE);
    for (let i = 0; i < contours.size(); i++) {
      const c = s.keep(contours.get(i));
      const b = {area: cv.contourArea(c) + cv.arcLength(c, true) / 2 + 1, rect: P.rectOf(cv.boundingRect(c)),
                 contour: c};
      if (b.area >= minArea && M.touchesEdge(b.rect, inner) !== inside) blobs.push(b);
    }
  }
  // a shadow's edge and corners are not ink, as in the region path
  const gradient = pre.morph(s, paper, cv.MORPH_GRADIENT, s.ones(9, 9));
  const quarter = s.like();
  paper.copyTo(quarter);
  const q = quarter.data;
  for (let i = 0; i < q.length; i++) q[i] >>= 2;
  const steps = s.like();
  cv.compare(gradient, quarter, steps, cv.CMP_GT);
  if (cv.countNonZero(steps) > 0) blobs = blobs.filter((b) => !pre.shadowCorner(s, b.contour, padded, paper, steps));
  const f = Math.max(gray.rows, gray.cols) / n;
  const found = [];
  for (const inside of [true, false]) {  // inside and at the border apart: the border never swallows the digit
    let pool = blobs.filter((b) => M.touchesEdge(b.rect, inner) !== inside);
    while (pool.length) {
      const [[bx, by, bw, bh], chosen] = M.digitBlobs(M.firstLargest(pool), pool);
      const members = pool.filter((b) => chosen.includes(b.contour));
      pool = pool.filter((b) => !chosen.includes(b.contour));
      const box = [P.pyRound((bx - pad) * f), P.pyRound((by - pad) * f), Math.max(1, P.pyRound(bw * f)),
                   Math.max(1, P.pyRound(bh * f))];
      let ink = 0;
      for (const b of members) ink += b.area;
      found.push({box, ink, within: inside && !M.touchesEdge([bx, by, bw, bh], inner)});
    }
  }
  return [found, f];
}

function squareAround(K, [x, y, w, h], height, width, wider = 1.0) {
  const short = Math.min(height, width), P = DigitsumPreprocess;
  const side = Math.trunc(Math.min(short, wider * Math.max(K.MIN_REGION * short, Math.max(w, h) / K.FILL)));
  const sx = Math.min(Math.max(P.pyRound(x + w / 2 - side / 2), 0), width - side);
  const sy = Math.min(Math.max(P.pyRound(y + h / 2 - side / 2), 0), height - side);
  return [sx, sy, side, side];
}

function centrality([x, y, w, h], height, width) {
  const dx = (x + w / 2) / width - 0.5, dy = (y + h / 2) / height - 0.5;
  return 1.0 - Math.hypot(dx, dy) / (2 * Math.hypot(0.5, 0.5));
}

function cropLike(K, [x, y, w, h], density, height, width, cross = K.CROSS) {
  const short = Math.min(height, width);
  if (Math.max(w, h) < K.CROP * short || w > K.WIDE * h || w < K.THIN * Math.min(h, width) ||
      DigitsumMarks.alongSide([x, y, w, h], [0, 0, width, height]) ||
      Math.abs(x + w / 2 - width / 2) > K.OFF * width || Math.abs(y + h / 2 - height / 2) > K.OFF * height) {
    return false;
  }
  const [across, down] = crosses([x, y, w, h], height, width);
  return density >= (across && down ? K.DENSE : across || down ? cross : 0.0);
}

function crosses([x, y, w, h], height, width) {  // [across the picture, down it]
  const edge = 0.01 * Math.min(height, width) + 1;
  return [x <= edge && x + w >= width - edge, y <= edge && y + h >= height - edge];
}

function fills(K, [x, y, w, h], height, width) {  // a digit framed tightly: within FRAME of every side
  const gapX = K.FRAME * width, gapY = K.FRAME * height;
  return x <= gapX && y <= gapY && x + w >= width - gapX && y + h >= height - gapY;
}

function samePlace([ax, ay, aw, ah], [bx, by, bw, bh]) {
  const overlap = Math.max(0, Math.min(ax + aw, bx + bw) - Math.max(ax, bx)) *
                  Math.max(0, Math.min(ay + ah, by + bh) - Math.max(ay, by));
  return overlap >= 0.5 * Math.max(aw * ah, bw * bh);
}

function candidateDict(c) {  // Candidate.to_dict()
  const r4 = (v) => Math.round(v * 1e4) / 1e4;
  return {box: c.prep.box || c.box, region: c.region, score: r4(c.score), digit: c.digit,
          confidence: c.confidence === null ? null : r4(c.confidence), reason: c.prep.reason || null, chosen: c.chosen};
}

function prepareStill(pre, rgba) {
  const cv = pre.cv, s = new DigitsumPreprocess.Mats(cv), K = pre.stills;  // stills.py's constants, digitsum.json
  const height = rgba.height, width = rgba.width, short = Math.min(height, width);
  let found, f;
  try {
    const gray = s.like();
    cv.cvtColor(s.keep(cv.matFromImageData(rgba)), gray, cv.COLOR_RGBA2GRAY);
    [found, f] = stillGroups(pre, s, gray, K);
  } finally {
    s.delete();
  }
  const inside = found.filter((g) => g.within && K.MIN_MARK * short <= Math.max(g.box[2], g.box[3]) &&
                                     Math.max(g.box[2], g.box[3]) < K.CROP * short);
  inside.sort((a, b) => b.ink - a.ink);  // stable, like sorted()
  const candidates = inside.slice(0, K.MOST).map((g) => {
    const region = squareAround(K, g.box, height, width);
    return {box: g.box, region, ink: g.ink, prep: pre.readRegion(rgba, region), score: 0, confidence: null,
            digit: null, chosen: false};
  });
  const margin = DigitsumPreprocess.pyRound(K.MARGIN * short);
  // the digit found again, in the same place, in a square WIDER times larger around `box`
  const steady = (box, found) => {
    const again = pre.readRegion(rgba, squareAround(K, box, height, width, K.WIDER));
    return again.mnist !== null && again.box !== null && samePlace(again.box, found);
  };
  for (const c of candidates) {  // against the picture's border, or found in one square only: no contender
    if (c.prep.mnist === null || c.prep.box === null) continue;
    if (DigitsumMarks.touchesEdge(c.prep.box, [margin, margin, width - 2 * margin, height - 2 * margin])) {
      c.prep = {...c.prep, mnist: null, reason: "touches edge"};
    } else if (!steady(c.box, c.prep.box)) {
      c.prep = {...c.prep, mnist: null, reason: "unsteady"};
    }
  }
  const digits = candidates.filter((c) => c.prep.mnist !== null);
  let total = 0;
  for (const c of digits) total += Math.max(c.box[2], c.box[3]);
  total = total || 1.0;
  for (const c of digits) {
    const density = c.ink * f * f / (c.box[2] * c.box[3]);
    c.score = Math.max(c.box[2], c.box[3]) / total * centrality(c.prep.box || c.box, height, width) *
              Math.min(1.0, 2 * (1 - density));
  }
  const roi = [0, 0, width, height];
  if (digits.length) {
    const best = digits.reduce((a, b) => (b.score > a.score ? b : a));
    best.chosen = true;
    return {mnist: best.prep.mnist, roi, box: best.prep.box, reason: best.prep.reason, candidates};
  }
  const marks = found.filter((g) => Math.max(g.box[2], g.box[3]) >= K.MIN_MARK * short);
  const crops = marks.filter((g) => cropLike(K, g.box, g.ink * f * f / (g.box[2] * g.box[3]), height, width));
  // a fainter group across the picture one way: a digit framed tightly too when the whole reading fills the picture
  const faint = marks.filter((g) => cropLike(K, g.box, g.ink * f * f / (g.box[2] * g.box[3]), height, width,
                                             K.DENSE));
  // marks across the whole picture both ways (rules or a shadow joined to a digit held in the middle): the guide
  // square a camera reads, before the picture is taken for a crop
  const guide = DigitsumPreprocess.roiBox(height, width, K.GUIDE);
  const readGuide = () => ({box: guide, region: guide, ink: 0, prep: pre.readRegion(rgba, guide), score: 0,
                            confidence: null, digit: null, chosen: false});
  const strip = Math.max(height, width) >= 2 * short;  // a picture much longer than wide is framed on its digit
  const sheet = crops.length > 0 && !strip && crops.every((g) => crosses(g.box, height, width).every((v) => v));
  let centre = sheet ? readGuide() : null;
  if ((centre === null || centre.prep.mnist === null) &&
      (faint.length || (!marks.length && strip))) {
    const whole = pre.readRegion(rgba, null);
    // not a sleeve or a margin, and in the place of the mark that made the picture look like a crop, or filling it
    if (whole.box !== null && !DigitsumMarks.alongSide(whole.box, roi) &&
        (!faint.length || crops.some((g) => samePlace(whole.box, g.box)) || fills(K, whole.box, height, width))) {
      return {...whole, candidates: centre ? [...candidates, centre] : candidates};
    }
  }
  // last, the guide square a camera reads (a digit held in the middle, its marks joined to a shadow's at the border)
  centre = centre || readGuide();
  candidates.push(centre);
  if (centre.prep.mnist !== null) {
    centre.chosen = true;
    centre.steady = steady(centre.prep.box, centre.prep.box);  // doubtful() weighs it with the model's confidence
    return {mnist: centre.prep.mnist, roi, box: centre.prep.box, reason: "", candidates};
  }
  const reasons = candidates.map((c) => c.prep.reason);
  const count = (r) => reasons.filter((v) => v === r).length;
  const reason = reasons.length ? reasons.reduce((a, b) => (count(b) > count(a) ? b : a)) : "blank";
  return {mnist: null, roi, box: null, reason, candidates};
}

// the guide square's reading found there only, read with less than GUIDE_SURE confidence: no digit
function doubtful(K, c, confidence) {
  return c.steady === false && confidence < K.GUIDE_SURE;
}

self.DigitsumStills = {prepareStill, candidateDict, doubtful};
