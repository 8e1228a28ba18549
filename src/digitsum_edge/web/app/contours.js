// Contours and connected components for cvlite.js (load it first), as OpenCV finds, measures and fills them:
// Suzuki and Abe's border following in OpenCV's order, the polygon measures it computes, its scanline fill.
"use strict";

(function () {
  const cv = self.cvlite, {Mat, CV_32S} = cv, CV_32SC2 = 12;

  // Connected components, 8-connected: labels in raster order of first pixels, and x, y, w, h, area.
  function connectedComponentsWithStats(src, labels, stats, centroids) {
    const rows = src.rows, cols = src.cols, d = src.data, lab = new Int32Array(d.length);
    const parent = [0];
    const find = (x) => { while (parent[x] !== x) { parent[x] = parent[parent[x]]; x = parent[x]; } return x; };
    const join = (l, o) => {  // l (0: none yet) and the labelled neighbour o as one set; its root
      if (!o) return l;
      const a = find(o);
      if (!l || a === l) return a;
      const lo = Math.min(a, l);
      parent[Math.max(a, l)] = lo;
      return lo;
    };
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        const i = y * cols + x;
        if (!d[i]) continue;
        let l = 0;  // the neighbours above (left to right) and on the left, joined under the smallest root
        if (y > 0) {
          if (x > 0) l = join(l, lab[i - cols - 1]);
          l = join(l, lab[i - cols]);
          if (x < cols - 1) l = join(l, lab[i - cols + 1]);
        }
        if (x > 0) l = join(l, lab[i - 1]);
        if (!l) { l = parent.length; parent.push(l); }
        lab[i] = l;
      }
    }
    const remap = new Int32Array(parent.length);
    let count = 1;
    for (let i = 1; i < parent.length; i++) { const r = find(i); remap[i] = r === i ? count++ : remap[r]; }
    const st = new Int32Array(count * 5);
    for (let i = 0; i < count; i++) { st[5 * i] = cols; st[5 * i + 1] = rows; st[5 * i + 2] = -1; st[5 * i + 3] = -1; }
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        const i = y * cols + x, l = lab[i] ? remap[lab[i]] : 0;
        lab[i] = l;
        const o = 5 * l;
        st[o] = Math.min(st[o], x); st[o + 1] = Math.min(st[o + 1], y);
        st[o + 2] = Math.max(st[o + 2], x); st[o + 3] = Math.max(st[o + 3], y); st[o + 4] += 1;
      }
    }
    for (let i = 0; i < count; i++) { st[5 * i + 2] -= st[5 * i] - 1; st[5 * i + 3] -= st[5 * i + 1] - 1; }
    labels.assign(rows, cols, CV_32S, lab);
    stats.assign(count, 5, CV_32S, st);
    return count;
  }

  // findContours: Suzuki and Abe's border following as OpenCV does it (a frame of zeros around the image,
  // outer borders only (RETR_EXTERNAL) or all (RETR_LIST), the newest contour first).
  const DIRS = [[1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1]];  // OpenCV's chain codes
  const DIR_OF = new Int8Array(9).fill(-1);  // (dy + 1) * 3 + dx + 1 -> the chain code
  DIRS.forEach(([dx, dy], code) => { DIR_OF[(dy + 1) * 3 + dx + 1] = code; });

  function findContours(src, contours, hierarchy, mode, method) {
    const W = src.cols + 2, H = src.rows + 2, img = new Int32Array(W * H);
    for (let y = 0; y < src.rows; y++) for (let x = 0; x < src.cols; x++) img[(y + 1) * W + x + 1] = src.data[y * src.cols + x] ? 1 : 0;
    const borders = [null, {outer: false, parent: 0}];  // by nbd; 1 is the frame (a hole, as Suzuki has it)
    const found = [];
    for (let y = 1; y < H - 1; y++) {
      let lnbd = 1;
      for (let x = 1; x < W - 1; x++) {
        const v = img[y * W + x];
        if (v === 0) continue;
        let from = null, outer = false;
        if (v === 1 && img[y * W + x - 1] === 0) { outer = true; from = [x - 1, y]; }
        else if (v >= 1 && img[y * W + x + 1] === 0) { from = [x + 1, y]; if (v > 1) lnbd = v; }
        if (from) {
          const nbd = borders.length, last = borders[lnbd];
          const parent = outer === last.outer ? last.parent : lnbd;
          borders.push({outer, parent});
          const points = follow(img, W, x, y, from, nbd);
          if (mode !== 0 || (outer && parent === 1)) found.push(points);
        }
        const after = img[y * W + x];
        if (after !== 1) lnbd = Math.abs(after);
      }
    }
    for (const points of found.reverse()) {  // OpenCV lists the contour found last first
      let pts = points.map(([x, y]) => [x - 1, y - 1]);
      if (method === 2) pts = simplify(pts);
      const m = new Mat(pts.length, 1, CV_32SC2);
      pts.forEach(([x, y], k) => { m.data[2 * k] = x; m.data[2 * k + 1] = y; });
      contours.push_back(m);
    }
  }

  function follow(img, W, x0, y0, from, nbd) {  // Suzuki's steps 3.1-3.5: the border's points, pixels marked
    const at = (x, y) => img[y * W + x];
    const dirOf = (dx, dy) => DIR_OF[(dy + 1) * 3 + dx + 1];
    const d = dirOf(from[0] - x0, from[1] - y0);
    let found = -1;
    for (let k = 0; k < 8; k++) {  // clockwise from the zero pixel
      const dd = (d - k + 8) % 8;
      if (at(x0 + DIRS[dd][0], y0 + DIRS[dd][1]) !== 0) { found = dd; break; }
    }
    if (found < 0) { img[y0 * W + x0] = -nbd; return [[x0, y0]]; }
    const x1 = x0 + DIRS[found][0], y1 = y0 + DIRS[found][1];
    let x2 = x1, y2 = y1, x3 = x0, y3 = y0;
    const pts = [];
    for (;;) {
      const dd = dirOf(x2 - x3, y2 - y3);
      let rightZero = false, nx = 0, ny = 0;
      for (let k = 1; k <= 8; k++) {  // counter-clockwise from the one after (x2, y2)
        const e = (dd + k) % 8, px = x3 + DIRS[e][0], py = y3 + DIRS[e][1];
        if (at(px, py) !== 0) { nx = px; ny = py; break; }
        if (e === 0) rightZero = true;
      }
      if (rightZero) img[y3 * W + x3] = -nbd;
      else if (img[y3 * W + x3] === 1) img[y3 * W + x3] = nbd;
      pts.push([x3, y3]);
      if (nx === x0 && ny === y0 && x3 === x1 && y3 === y1) break;
      x2 = x3; y2 = y3; x3 = nx; y3 = ny;
    }
    return pts;
  }

  function simplify(pts) {  // CHAIN_APPROX_SIMPLE: the points where the direction changes
    if (pts.length < 3) return pts;
    const out = [];
    const n = pts.length;
    for (let i = 0; i < n; i++) {
      const [px, py] = pts[(i - 1 + n) % n], [x, y] = pts[i], [nx, ny] = pts[(i + 1) % n];
      if (x - px !== nx - x || y - py !== ny - y) out.push([x, y]);
    }
    return out.length ? out : [pts[0]];
  }

  const pointsOf = (c) => { const out = []; for (let i = 0; i < c.data.length; i += 2) out.push([c.data[i], c.data[i + 1]]); return out; };

  function contourArea(c) {
    const p = pointsOf(c);
    let a = 0;
    for (let i = 0; i < p.length; i++) {
      const [x0, y0] = p[(i - 1 + p.length) % p.length], [x1, y1] = p[i];
      a += x0 * y1 - x1 * y0;
    }
    return Math.abs(a * 0.5);
  }

  function arcLength(c) {
    const p = pointsOf(c);
    let length = 0;
    let [px, py] = p[p.length - 1];
    for (const [x, y] of p) {
      const dx = Math.fround(x - px), dy = Math.fround(y - py);
      length += Math.fround(Math.sqrt(dx * dx + dy * dy));
      [px, py] = [x, y];
    }
    return length;
  }

  function boundingRect(c) {
    const p = pointsOf(c);
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y] of p) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    return {x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1};
  }

  // drawContours, FILLED, as OpenCV draws it: each edge drawn as a line, then every scanline filled between
  // pairs of edges (x in 16.16 fixed point, spans from floor to floor)
  function drawContours(img, contours, index, color, thickness, lineType, hierarchy, maxLevel, offset) {
    const ox = offset ? offset.x : 0, oy = offset ? offset.y : 0, rows = img.rows, cols = img.cols, v = color[0];
    const edges = [];
    for (let k = 0; k < contours.size(); k++) {
      const p = pointsOf(contours.get(k)).map(([x, y]) => [x + ox, y + oy]);
      let [x0, y0] = p[p.length - 1];
      for (const [x1, y1] of p) {
        lineTo(img, [x0, y0], [x1, y1], v);
        if (y0 !== y1) {
          const dx = Math.trunc(((x1 - x0) * 65536) / (y1 - y0));
          edges.push(y0 < y1 ? {y0, y1, x: x0 * 65536, dx} : {y0: y1, y1: y0, x: x1 * 65536, dx});
        }
        [x0, y0] = [x1, y1];
      }
    }
    if (edges.length < 2) return;
    const top = Math.min(...edges.map((e) => e.y0)), bottom = Math.min(Math.max(...edges.map((e) => e.y1)), rows);
    for (let y = top; y < bottom; y++) {
      const xs = edges.filter((e) => e.y0 <= y && y < e.y1).map((e) => e.x + (y - e.y0) * e.dx).sort((a, b) => a - b);
      if (y < 0) continue;
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const a = Math.max(Math.floor(xs[k] / 65536), 0), b = Math.min(Math.floor(xs[k + 1] / 65536), cols - 1);
        for (let x = a; x <= b; x++) img.data[y * cols + x] = v;
      }
    }
  }

  function lineTo(img, [x0, y0], [x1, y1], v) {  // an 8-connected line (contours' steps are straight)
    const dx = Math.abs(x1 - x0), dy = Math.abs(y1 - y0), n = Math.max(dx, dy);
    for (let i = 0; i <= n; i++) {
      const x = n ? x0 + Math.round((x1 - x0) * i / n) : x0, y = n ? y0 + Math.round((y1 - y0) * i / n) : y0;
      if (x >= 0 && y >= 0 && x < img.cols && y < img.rows) img.data[y * img.cols + x] = v;
    }
  }

  function minAreaRect(c) {  // the smallest rectangle around the points, over the hull's edge directions; in
    // doubles where OpenCV's rotating calipers use floats: sizes agree to about 1e-6 (the preprocessing compares them)
    const hull = convexHull(pointsOf(c));
    if (hull.length < 3) {
      const b = boundingRect(c);
      const len = hull.length === 2 ? Math.hypot(hull[1][0] - hull[0][0], hull[1][1] - hull[0][1]) : 0;
      return {size: {width: len, height: 0}, center: {x: b.x, y: b.y}, angle: 0};
    }
    let best = null;
    for (let i = 0; i < hull.length; i++) {
      const [ax, ay] = hull[i], [bx, by] = hull[(i + 1) % hull.length];
      const len = Math.hypot(bx - ax, by - ay);
      if (!len) continue;
      const ux = (bx - ax) / len, uy = (by - ay) / len;
      let lo = Infinity, hi = -Infinity, lo2 = Infinity, hi2 = -Infinity;
      for (const [x, y] of hull) {
        const s = x * ux + y * uy, t = -x * uy + y * ux;
        lo = Math.min(lo, s); hi = Math.max(hi, s); lo2 = Math.min(lo2, t); hi2 = Math.max(hi2, t);
      }
      const area = (hi - lo) * (hi2 - lo2);
      if (!best || area < best.area) best = {area, w: hi - lo, h: hi2 - lo2};
    }
    return {size: {width: Math.fround(best.w), height: Math.fround(best.h)}, center: {x: 0, y: 0}, angle: 0};
  }

  function convexHull(pts) {
    const p = [...pts].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const lower = [], upper = [];
    for (const q of p) { while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop(); lower.push(q); }
    for (const q of p.reverse()) { while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop(); upper.push(q); }
    return lower.slice(0, -1).concat(upper.slice(0, -1));
  }

  function moments(src) {
    if (src.type_ === CV_32SC2) {  // a contour: Green's theorem over its polygon
      const p = pointsOf(src);
      if (p.length <= 2) return {m00: 0, m10: 0, m01: 0};
      let a00 = 0, a10 = 0, a01 = 0;
      let [xp, yp] = p[p.length - 1];
      for (const [x, y] of p) {
        const xy = xp * y - x * yp;
        a00 += xy; a10 += xy * (xp + x); a01 += xy * (yp + y);
        [xp, yp] = [x, y];
      }
      const sign = a00 > 0 ? 1 : -1;
      if (Math.abs(a00) <= 1.1920928955078125e-7) return {m00: 0, m10: 0, m01: 0};
      return {m00: a00 * (0.5 * sign), m10: a10 * (sign / 6), m01: a01 * (sign / 6)};
    }
    let m00 = 0, m10 = 0, m01 = 0;
    for (let y = 0; y < src.rows; y++) {
      for (let x = 0; x < src.cols; x++) {
        const v = src.data[y * src.cols + x];
        m00 += v; m10 += x * v; m01 += y * v;
      }
    }
    return {m00, m10, m01};
  }

  Object.assign(cv, {connectedComponentsWithStats, findContours, contourArea, arcLength, boundingRect, drawContours,
                     minAreaRect, moments});
})();
