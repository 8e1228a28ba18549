// The OpenCV functions the preprocessing uses, in plain JavaScript, for 8-bit images, with OpenCV.js's API (cv.Mat,
// cv.resize, cv.threshold ...) at a hundredth of its download: images, arithmetic, resizing, morphology and
// thresholds here; contours and connected components in contours.js. Each follows OpenCV's own rules (rounding,
// anchors, borders, the order of contours), so the preprocessing gives OpenCV's results bit for bit. Rectangular
// morphology and the pixel-by-pixel operations run in a small WebAssembly SIMD module where the browser has it
// (SIMD_MODULE below), with the same results as the loops that run elsewhere.
"use strict";

(function () {
  const CV_8UC1 = 0, CV_8UC4 = 24, CV_32S = 4, CV_32SC2 = 12;

  class Mat {
    constructor(rows = 0, cols = 0, type = CV_8UC1, scalar = null) {
      this.rows = rows;
      this.cols = cols;
      this.type_ = type;
      const n = rows * cols * (type === CV_8UC4 ? 4 : type === CV_32SC2 ? 2 : 1);
      this.data = type === CV_32S || type === CV_32SC2 ? new Int32Array(n) : new Uint8Array(n);
      if (scalar) this.data.fill(scalar[0]);
      this.deleted = false;
      this.parent = null;
    }
    get data32S() { return this.data; }
    channels() { return this.type_ === CV_8UC4 ? 4 : this.type_ === CV_32SC2 ? 2 : 1; }
    type() { return this.type_; }
    roi(r) {  // a view: copyTo a view writes into its parent
      const view = new Mat(r.height, r.width, this.type_);
      const c = this.channels();
      for (let y = 0; y < r.height; y++) {
        const start = ((r.y + y) * this.cols + r.x) * c;
        view.data.set(this.data.subarray(start, start + r.width * c), y * r.width * c);
      }
      view.parent = {mat: this, rect: r};
      return view;
    }
    copyTo(dst) {
      if (dst.parent) {
        const {mat, rect} = dst.parent, c = this.channels();
        for (let y = 0; y < rect.height; y++) {
          mat.data.set(this.data.subarray(y * this.cols * c, (y + 1) * this.cols * c), ((rect.y + y) * mat.cols + rect.x) * c);
        }
        return;
      }
      dst.assign(this.rows, this.cols, this.type_, this.data.slice());
    }
    assign(rows, cols, type, data) {
      this.rows = rows; this.cols = cols; this.type_ = type; this.data = data;
    }
    delete() { this.deleted = true; }
    isDeleted() { return this.deleted; }
  }
  Mat.ones = (rows, cols) => new Mat(rows, cols, CV_8UC1, [1]);

  class MatVector {
    constructor() { this.items = []; }
    push_back(m) { this.items.push(m); }
    get(i) { return this.items[i]; }
    size() { return this.items.length; }
    delete() {}
    isDeleted() { return false; }
  }

  const gray = (dst, rows, cols, data) => dst.assign(rows, cols, CV_8UC1, data);
  const rint = (v) => {  // cvRound: to the nearest, halves to even
    const r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const sat = (v) => (v < 0 ? 0 : v > 255 ? 255 : v);

  function cvtColor(src, dst) {  // RGBA -> gray: OpenCV's fixed point, 15 bits
    const d = src.data, n = src.rows * src.cols, out = new Uint8Array(n);
    for (let i = 0, j = 0; i < n; i++, j += 4) out[i] = (d[j] * 9798 + d[j + 1] * 19235 + d[j + 2] * 3735 + 16384) >> 15;
    gray(dst, src.rows, src.cols, out);
  }

  function resize(src, dst, size, fx, fy, interpolation) {
    const sh = src.rows, sw = src.cols, dh = size.height, dw = size.width, s = src.data;
    const out = new Uint8Array(dw * dh);
    if (interpolation === 3) {  // INTER_AREA
      const kx = 1 / (dw / sw), ky = 1 / (dh / sh);  // OpenCV's scale: 1 / inv_scale
      if (kx === 2 && ky === 2) {  // halving: (a + b + c + d + 2) >> 2, OpenCV's fast path
        for (let y = 0; y < dh; y++) {
          const r0 = 2 * y * sw, r1 = r0 + sw;
          for (let x = 0, o = y * dw; x < dw; x++, o++) {
            const c = 2 * x;
            out[o] = (s[r0 + c] + s[r0 + c + 1] + s[r1 + c] + s[r1 + c + 1] + 2) >> 2;
          }
        }
      } else if (Number.isInteger(kx) && Number.isInteger(ky)) {
        const area = kx * ky;
        for (let y = 0; y < dh; y++) {
          for (let x = 0; x < dw; x++) {
            let sum = 0;
            for (let v = 0; v < ky; v++) for (let u = 0; u < kx; u++) sum += s[(y * ky + v) * sw + x * kx + u];
            out[y * dw + x] = kx === 2 && ky === 2 ? (sum + 2) >> 2 : sat(rint(Math.fround(sum * Math.fround(1 / area))));
          }
        }
      } else {
        areaResize(s, sw, sh, out, dw, dh);
      }
    } else {  // INTER_LINEAR, OpenCV's fixed point: 11-bit weights, rows then columns, as its vector code rounds
      const [x0s, x1s, a0s, a1s] = linearTab(sw, dw, true), [y0s, y1s, b0s, b1s] = linearTab(sh, dh, false);
      const across = new Int32Array(sh * dw), done = new Uint8Array(sh);  // each source row resized once
      const rowOf = (sy) => {
        const at = sy * dw;
        if (!done[sy]) {
          const base = sy * sw;
          for (let x = 0; x < dw; x++) across[at + x] = s[base + x0s[x]] * a0s[x] + s[base + x1s[x]] * a1s[x];
          done[sy] = 1;
        }
        return at;
      };
      for (let y = 0; y < dh; y++) {
        const r0 = rowOf(y0s[y]), r1 = rowOf(y1s[y]), b0 = b0s[y], b1 = b1s[y], o = y * dw;
        for (let x = 0; x < dw; x++) {
          out[o + x] = sat((((b0 * (across[r0 + x] >> 4)) >> 16) + ((b1 * (across[r1 + x] >> 4)) >> 16) + 2) >> 2);
        }
      }
    }
    gray(dst, dh, dw, out);
  }

  // The project's own resize in integers (vision/resample.py), the same pixels on every machine: linear as
  // OpenCV's bit-exact INTER_LINEAR_EXACT (8-bit weights, summed exactly and rounded once), or the area average
  // where neither side grows.
  const ONE = 256;
  function exactLinearTab(sn, dn) {  // per destination pixel: two source indices and the second one's weight
    const scale = 1 / (dn / sn), first = new Int32Array(dn), second = new Int32Array(dn), w1 = new Int32Array(dn);
    for (let d = 0; d < dn; d++) {
      const f = scale * (d + 0.5) - 0.5;  // in doubles, in OpenCV's order
      let i = Math.floor(f), w = 0;
      if (i < 0 || sn === 1) i = 0;
      else if (i >= sn - 1) i = sn - 1;
      else w = rint((f - i) * ONE);  // half to even
      first[d] = i;
      second[d] = Math.min(i + 1, sn - 1);
      w1[d] = w;
    }
    return [first, second, w1];
  }

  function exactAreaTab(sn, dn) {  // per destination pixel: first source index, and the share of each source pixel
    // covered in units of 1 / dn (they sum to sn)
    const taps = [];
    for (let d = 0; d < dn; d++) {
      const start = d * sn, first = Math.floor(start / dn), weights = [];
      for (let i = first; i * dn < start + sn; i++) weights.push(Math.min(start + sn, (i + 1) * dn) - Math.max(start, i * dn));
      taps.push([first, weights]);
    }
    return taps;
  }

  function resample(src, dst, size, area) {
    const sh = src.rows, sw = src.cols, dh = size.height, dw = size.width, s = src.data;
    const out = new Uint8Array(dw * dh);
    if (dw === sw && dh === sh) {
      out.set(s);
    } else if (area && dw <= sw && dh <= sh) {
      const xt = exactAreaTab(sw, dw), yt = exactAreaTab(sh, dh), scale = sw * sh;
      const rows = new Float64Array(sh * dw);  // exact integers
      for (let y = 0; y < sh; y++) {
        for (let x = 0; x < dw; x++) {
          const [first, weights] = xt[x];
          let sum = 0;
          for (let k = 0; k < weights.length; k++) sum += s[y * sw + first + k] * weights[k];
          rows[y * dw + x] = sum;
        }
      }
      for (let y = 0; y < dh; y++) {
        const [first, weights] = yt[y];
        for (let x = 0; x < dw; x++) {
          let sum = 0;
          for (let k = 0; k < weights.length; k++) sum += rows[(first + k) * dw + x] * weights[k];
          out[y * dw + x] = Math.floor((2 * sum + scale) / (2 * scale));
        }
      }
    } else {
      const [x0, x1, xw] = exactLinearTab(sw, dw), [y0, y1, yw] = exactLinearTab(sh, dh);
      const rows = new Int32Array(sh * dw);
      for (let y = 0; y < sh; y++) {
        const base = y * sw, at = y * dw;
        for (let x = 0; x < dw; x++) rows[at + x] = s[base + x0[x]] * (ONE - xw[x]) + s[base + x1[x]] * xw[x];
      }
      for (let y = 0; y < dh; y++) {
        const r0 = y0[y] * dw, r1 = y1[y] * dw, b1 = yw[y], b0 = ONE - b1;
        for (let x = 0; x < dw; x++) out[y * dw + x] = (rows[r0 + x] * b0 + rows[r1 + x] * b1 + (1 << 15)) >> 16;
      }
    }
    gray(dst, dh, dw, out);
  }

  function linearTab(sn, dn, across) {  // per destination pixel: two source indices and their 11-bit weights;
    // across a row the weights are reset at the ends, down the columns only the rows are clamped (OpenCV's way)
    const scale = 1 / (dn / sn), first = new Int32Array(dn), second = new Int32Array(dn);
    const w0 = new Int32Array(dn), w1 = new Int32Array(dn);
    const clamp = (k) => Math.min(Math.max(k, 0), sn - 1);
    for (let d = 0; d < dn; d++) {
      let f = Math.fround((d + 0.5) * scale - 0.5);
      let i = Math.floor(f);
      f = Math.fround(f - i);
      if (across && i < 0) { i = 0; f = 0; }
      if (across && i >= sn - 1) { i = sn - 1; f = 0; }
      first[d] = clamp(i);
      second[d] = clamp(i + 1);
      w0[d] = rint(Math.fround(1 - f) * 2048);
      w1[d] = rint(f * 2048);
    }
    return [first, second, w0, w1];
  }

  function areaTab(sn, dn) {  // OpenCV's computeResizeAreaTab: (destination, source, weight) triples, as 3 arrays
    const scale = 1 / (dn / sn), dest = [], source = [], weight = [];
    const push = (d, s, w) => { dest.push(d); source.push(s); weight.push(w); };
    for (let d = 0; d < dn; d++) {
      const fsx1 = d * scale, fsx2 = fsx1 + scale;
      const cellWidth = Math.min(scale, sn - fsx1);
      let sx1 = Math.ceil(fsx1), sx2 = Math.floor(fsx2);
      sx2 = Math.min(sx2, sn - 1);
      sx1 = Math.min(sx1, sx2);
      if (sx1 - fsx1 > 1e-3) push(d, sx1 - 1, Math.fround((sx1 - fsx1) / cellWidth));
      for (let s = sx1; s < sx2; s++) push(d, s, Math.fround(1 / cellWidth));
      if (fsx2 - sx2 > 1e-3) push(d, sx2, Math.fround(Math.min(Math.min(fsx2 - sx2, 1), cellWidth) / cellWidth));
    }
    return [Int32Array.from(dest), Int32Array.from(source), Float32Array.from(weight)];
  }

  function areaResize(s, sw, sh, out, dw, dh) {  // float accumulation, rows then columns, as OpenCV's ResizeArea
    const [xd, xs, xw] = areaTab(sw, dw), [yd, ys, yw] = areaTab(sh, dh);
    const across = new Float32Array(sh * dw), done = new Uint8Array(sh);  // each source row resized once
    const rowOf = (sy) => {
      const at = sy * dw;
      if (!done[sy]) {
        const base = sy * sw;
        for (let j = 0; j < xd.length; j++) {
          across[at + xd[j]] = Math.fround(across[at + xd[j]] + Math.fround(s[base + xs[j]] * xw[j]));
        }
        done[sy] = 1;
      }
      return at;
    };
    const sum = new Float32Array(dw);
    let current = -1;
    for (let j = 0; j < yd.length; j++) {
      const dy = yd[j], beta = yw[j];
      if (dy !== current) {
        if (current >= 0) for (let x = 0; x < dw; x++) out[current * dw + x] = sat(rint(sum[x]));
        sum.fill(0);
        current = dy;
      }
      const at = rowOf(ys[j]);
      for (let x = 0; x < dw; x++) sum[x] = Math.fround(sum[x] + Math.fround(across[at + x] * beta));
    }
    for (let x = 0; x < dw; x++) out[current * dw + x] = sat(rint(sum[x]));
  }

  // Morphology: OpenCV's min or max over the kernel's points, anchor at its centre, pixels beyond ignored.
  function morphPass(src, kernel, isMax) {
    const rows = src.rows, cols = src.cols, d = src.data, out = new Uint8Array(d.length);
    if (kernel.data.indexOf(0) < 0) return separable(d, rows, cols, kernel.cols, kernel.rows, isMax);  // a rectangle
    const ax = kernel.cols >> 1, ay = kernel.rows >> 1, pts = [];
    for (let y = 0; y < kernel.rows; y++) for (let x = 0; x < kernel.cols; x++) if (kernel.data[y * kernel.cols + x]) pts.push([x - ax, y - ay]);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        let v = isMax ? 0 : 255;
        for (const [dx, dy] of pts) {
          const yy = y + dy, xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= rows || xx >= cols) continue;
          const p = d[yy * cols + xx];
          if (isMax ? p > v : p < v) v = p;
        }
        out[y * cols + x] = v;
      }
    }
    return out;
  }

  function separable(d, rows, cols, kw, kh, isMax) {
    if (simd !== null) return simdSeparable(d, rows, cols, kw, kh, isMax);
    const tmp = new Uint8Array(d.length), out = new Uint8Array(d.length);
    line(d, tmp, rows, cols, 1, cols, kw, isMax);
    line(tmp, out, cols, rows, cols, 1, kh, isMax);
    return out;
  }

  // The running min or max along lines (van Herk / Gil-Werman, three comparisons a pixel whatever k): `lines`
  // lines of `length` pixels, `step` apart within a line, `stride` from one line's start to the next. Max: of the
  // values; min: of their complements (255 - v), so that one loop serves both.
  function line(d, out, lines, length, step, stride, k, isMax) {
    if (k <= 3) return shortLine(d, out, lines, length, step, stride, k, isMax);
    const before = k >> 1, span = length + k - 1, flip = isMax ? 0 : 255;
    const p = new Uint8Array(span), g = new Uint8Array(span), h = new Uint8Array(span);
    for (let l = 0; l < lines; l++) {
      const first = l * stride;
      p.fill(0);
      for (let i = 0, at = first; i < length; i++, at += step) p[i + before] = d[at] ^ flip;
      for (let start = 0; start < span; start += k) {
        const end = start + k < span ? start + k : span;
        let run = p[start];
        g[start] = run;
        for (let i = start + 1; i < end; i++) { const v = p[i]; if (v > run) run = v; g[i] = run; }
        run = p[end - 1];
        h[end - 1] = run;
        for (let i = end - 2; i >= start; i--) { const v = p[i]; if (v > run) run = v; h[i] = run; }
      }
      for (let x = 0, at = first; x < length; x++, at += step) {
        const a = h[x], b = g[x + k - 1];
        out[at] = (a > b ? a : b) ^ flip;
      }
    }
  }

  function shortLine(d, out, lines, length, step, stride, k, isMax) {  // k 1-3: the window directly
    const before = k >> 1, flip = isMax ? 0 : 255;
    for (let l = 0; l < lines; l++) {
      const first = l * stride;
      for (let x = 0, at = first; x < length; x++, at += step) {
        let best = 0;
        for (let j = x - before; j < x - before + k; j++) {
          if (j < 0 || j >= length) continue;
          const v = d[first + j * step] ^ flip;
          if (v > best) best = v;
        }
        out[at] = best ^ flip;
      }
    }
  }

  // The same with WebAssembly SIMD, 16 pixels an instruction, where the browser has it (else the loops above): the
  // max over a window of k as the max of two overlapping windows of m (the largest power of two <= k), each made
  // by doubling (the max of x and x + m/2). Along rows in A (each row with kw neutral pixels either side), then
  // down the columns in B (kh neutral rows above and below). The module, 371 bytes, is five functions of the text
  // format's (func (param $dst i32) (param $src i32) (param $shift i32) (param $n i32)): for i = 0, 16 .. < n,
  // v128.store(dst + i, OP(v128.load(src + i), v128.load(src + shift + i))), OP being i8x16.max_u ("max"),
  // i8x16.min_u ("min"), i8x16.sub_sat_u ("sub"), v128.and ("and") and i8x16.gt_u ("gt"); and its memory.
  const SIMD_MODULE = new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 4, 127, 127, 127, 127, 0, 3, 6, 5, 0, 0, 0, 0, 0, 5, 3, 1, 0, 1, 7,
    39, 6, 6, 109, 101, 109, 111, 114, 121, 2, 0, 3, 109, 97, 120, 0, 0, 3, 109, 105, 110, 0, 1, 3, 115, 117, 98,
    0, 2, 3, 97, 110, 100, 0, 3, 2, 103, 116, 0, 4, 10, 168, 2, 5, 58, 1, 1, 127, 2, 64, 3, 64, 32, 4, 32, 3, 79,
    13, 1, 32, 0, 32, 4, 106, 32, 1, 32, 4, 106, 253, 0, 0, 0, 32, 1, 32, 2, 106, 32, 4, 106, 253, 0, 0, 0, 253,
    121, 253, 11, 0, 0, 32, 4, 65, 16, 106, 33, 4, 12, 0, 11, 11, 11, 58, 1, 1, 127, 2, 64, 3, 64, 32, 4, 32, 3,
    79, 13, 1, 32, 0, 32, 4, 106, 32, 1, 32, 4, 106, 253, 0, 0, 0, 32, 1, 32, 2, 106, 32, 4, 106, 253, 0, 0, 0,
    253, 119, 253, 11, 0, 0, 32, 4, 65, 16, 106, 33, 4, 12, 0, 11, 11, 11, 58, 1, 1, 127, 2, 64, 3, 64, 32, 4, 32,
    3, 79, 13, 1, 32, 0, 32, 4, 106, 32, 1, 32, 4, 106, 253, 0, 0, 0, 32, 1, 32, 2, 106, 32, 4, 106, 253, 0, 0, 0,
    253, 115, 253, 11, 0, 0, 32, 4, 65, 16, 106, 33, 4, 12, 0, 11, 11, 11, 58, 1, 1, 127, 2, 64, 3, 64, 32, 4, 32,
    3, 79, 13, 1, 32, 0, 32, 4, 106, 32, 1, 32, 4, 106, 253, 0, 0, 0, 32, 1, 32, 2, 106, 32, 4, 106, 253, 0, 0, 0,
    253, 78, 253, 11, 0, 0, 32, 4, 65, 16, 106, 33, 4, 12, 0, 11, 11, 11, 58, 1, 1, 127, 2, 64, 3, 64, 32, 4, 32,
    3, 79, 13, 1, 32, 0, 32, 4, 106, 32, 1, 32, 4, 106, 253, 0, 0, 0, 32, 1, 32, 2, 106, 32, 4, 106, 253, 0, 0, 0,
    253, 40, 253, 11, 0, 0, 32, 4, 65, 16, 106, 33, 4, 12, 0, 11, 11, 11]);
  let available = null;  // the module's exports where WebAssembly SIMD runs
  try {
    if (typeof WebAssembly === "object" && WebAssembly.validate(SIMD_MODULE)) {
      available = new WebAssembly.Instance(new WebAssembly.Module(SIMD_MODULE)).exports;
    }
  } catch (e) {
    available = null;  // no WebAssembly SIMD here: the loops
  }
  let simd = available;  // cv.useSimd(false): the loops (the tests compare both)
  let heap = null;  // a view of the module's memory (a new one after it grows)

  function memory(bytes) {
    const buffer = simd.memory.buffer;
    if (buffer.byteLength < bytes) simd.memory.grow(Math.ceil((bytes - buffer.byteLength) / 65536));
    if (heap === null || heap.buffer !== simd.memory.buffer) heap = new Uint8Array(simd.memory.buffer);
    return heap;
  }

  const up16 = (n) => (n + 15) & ~15;

  function windows(run, start, n, k, unit) {  // in place: [start + i] = the max of [start + i + j * unit], j < k
    let m = 1;
    while (2 * m <= k) { run(start, start, m * unit, up16(n)); m *= 2; }
    if (m < k) run(start, start, (k - m) * unit, up16(n));
  }

  function simdSeparable(d, rows, cols, kw, kh, isMax) {
    const run = isMax ? simd.max : simd.min, neutral = isMax ? 0 : 255;  // neutral: never the max (min)
    const stride = cols + 2 * kw, aSize = rows * stride, bSize = (rows + 2 * kh) * cols;
    const a0 = 0, b0 = up16(aSize + kw + 32), end = b0 + up16(bSize + kh * cols + 32);  // room for shifted reads
    const mem = memory(end);
    mem.fill(neutral, a0, end);
    for (let y = 0; y < rows; y++) mem.set(d.subarray(y * cols, (y + 1) * cols), a0 + y * stride + kw);
    windows(run, a0, aSize, kw, 1);  // the window of pixel x starts kw >> 1 before it
    for (let y = 0, from = a0 + kw - (kw >> 1); y < rows; y++, from += stride) {
      mem.copyWithin(b0 + (kh + y) * cols, from, from + cols);
    }
    windows(run, b0, bSize, kh, cols);
    const first = b0 + (kh - (kh >> 1)) * cols;
    return mem.slice(first, first + rows * cols);
  }

  // An operation on two images' pixels (or on an image and one value) in the module: copied in, 16 pixels an
  // instruction, copied out. Small images stay with the loops (the copies would cost more than they save).
  const SIMD_MIN = 1024;
  const simdFor = (x) => simd !== null && x.length >= SIMD_MIN && x instanceof Uint8Array;

  function simdBinary(name, x, y) {
    const n = x.length, size = up16(n) + 16, mem = memory(3 * size);
    mem.set(x, 0);
    if (typeof y === "number") mem.fill(y, size, size + n);
    else mem.set(y, size);
    simd[name](2 * size, 0, size, up16(n));
    return mem.slice(2 * size, 2 * size + n);
  }

  function simdPixels(name, a, b, dst) {  // dst = OP(a, b) pixel by pixel in the module, where it runs; whether it did
    if (!simdFor(a.data)) return false;
    gray(dst, a.rows, a.cols, simdBinary(name, a.data, b.data));
    return true;
  }

  function erode(src, dst, kernel) { gray(dst, src.rows, src.cols, morphPass(src, kernel, false)); }
  function dilate(src, dst, kernel) { gray(dst, src.rows, src.cols, morphPass(src, kernel, true)); }
  function morphologyEx(src, dst, op, kernel) {
    const t = new Mat();
    if (op === 3) { dilate(src, t, kernel); erode(t, dst, kernel); }  // close
    else if (op === 2) { erode(src, t, kernel); dilate(t, dst, kernel); }  // open
    else {  // gradient
      const lo = new Mat(); dilate(src, t, kernel); erode(src, lo, kernel);
      cv.subtract(t, lo, dst);
    }
  }

  function getStructuringElement(shape, size) {  // MORPH_RECT, or MORPH_ELLIPSE as OpenCV draws it
    const m = new Mat(size.height, size.width, CV_8UC1);
    if (shape === 0) { m.data.fill(1); return m; }
    const r = size.width >> 1, c = size.height >> 1, inv = r ? 1 / (r * r) : 0;
    for (let i = 0; i < size.height; i++) {
      const dy = i - c;
      if (Math.abs(dy) > r) continue;
      const dx = rint(c * Math.sqrt((r * r - dy * dy) * inv));
      for (let j = Math.max(c - dx, 0); j < Math.min(c + dx + 1, size.width); j++) m.data[i * size.width + j] = 1;
    }
    return m;
  }

  function threshold(src, dst, thresh, maxval, type) {
    let t = thresh;
    if (type & 8) t = otsu(src);  // THRESH_OTSU
    const it = Math.floor(t), x = src.data;
    if (maxval === 255 && it >= 0 && simdFor(x)) {
      gray(dst, src.rows, src.cols, simdBinary("gt", x, Math.min(it, 255)));
      return t;
    }
    const o = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) o[i] = x[i] > it ? maxval : 0;
    gray(dst, src.rows, src.cols, o);
    return t;
  }

  function otsu(src) {
    const h = new Float64Array(256), d = src.data, n = d.length;
    for (let i = 0; i < n; i++) h[d[i]] += 1;
    const scale = 1 / n;
    let mu = 0;
    for (let i = 0; i < 256; i++) mu += i * h[i];
    mu *= scale;
    let mu1 = 0, q1 = 0, maxSigma = 0, maxVal = 0;
    const eps = 1.1920928955078125e-7;
    for (let i = 0; i < 256; i++) {
      const p = h[i] * scale;
      mu1 *= q1;
      q1 += p;
      const q2 = 1 - q1;
      if (Math.min(q1, q2) < eps || Math.max(q1, q2) > 1 - eps) continue;
      mu1 = (mu1 + i * p) / q1;
      const mu2 = (mu - q1 * mu1) / q2;
      const sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
      if (sigma > maxSigma) { maxSigma = sigma; maxVal = i; }
    }
    return maxVal;
  }

  const quotients = new Map();  // scale -> the 256 x 256 table of OpenCV's 8-bit division, made once
  function divide(a, b, dst, scale) {
    if (!quotients.has(scale)) {
      const t = new Uint8Array(65536);
      for (let v = 0; v < 256; v++) for (let w = 1; w < 256; w++) t[v * 256 + w] = sat(rint(Math.fround(Math.fround(v * scale) / w)));
      quotients.set(scale, t);
    }
    const t = quotients.get(scale), x = a.data, y = b.data, o = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) o[i] = t[x[i] * 256 + y[i]];
    gray(dst, a.rows, a.cols, o);
  }

  function copyMakeBorder(src, dst, top, bottom, left, right) {  // BORDER_REPLICATE
    const rows = src.rows + top + bottom, cols = src.cols + left + right, out = new Uint8Array(rows * cols);
    for (let y = 0; y < rows; y++) {
      const sy = Math.min(Math.max(y - top, 0), src.rows - 1);
      for (let x = 0; x < cols; x++) out[y * cols + x] = src.data[sy * src.cols + Math.min(Math.max(x - left, 0), src.cols - 1)];
    }
    gray(dst, rows, cols, out);
  }

  function minMaxLoc(src) {
    let lo = 255, hi = 0;
    const x = src.data;
    for (let i = 0; i < x.length; i++) { const v = x[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
    return {minVal: lo, maxVal: hi};
  }

  function mean(src, mask) {
    let sum = 0, n = 0;
    for (let i = 0; i < src.data.length; i++) if (mask.data[i]) { sum += src.data[i]; n++; }
    return [n ? sum / n : 0, 0, 0, 0];
  }

  const cv = {
    Mat, MatVector, CV_8UC1, CV_8UC4, CV_32S, FILLED: -1, LINE_8: 8,
    COLOR_RGBA2GRAY: 11, INTER_LINEAR: 1, INTER_AREA: 3, MORPH_RECT: 0, MORPH_ELLIPSE: 2, MORPH_CLOSE: 3,
    MORPH_OPEN: 2, MORPH_GRADIENT: 4, THRESH_BINARY: 0, THRESH_OTSU: 8, CMP_GT: 1, RETR_EXTERNAL: 0, RETR_LIST: 1,
    CHAIN_APPROX_NONE: 1, CHAIN_APPROX_SIMPLE: 2, BORDER_CONSTANT: 0, BORDER_REPLICATE: 1,
    Size: function (width, height) { return {width, height}; },
    Point: function (x, y) { return {x, y}; },
    Rect: function (x, y, width, height) { return {x, y, width, height}; },
    Scalar: function (v) { return [v, v, v, v]; },
    morphologyDefaultBorderValue: () => null,
    matFromImageData: (img) => {  // (a Uint8Array over the Uint8ClampedArray's bytes: set() is then a memcpy)
      const m = new Mat(img.height, img.width, CV_8UC4);
      m.data.set(new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length));
      return m;
    },
    cvtColor, resize, resample, erode: (s, d, k) => erode(s, d, k), dilate: (s, d, k) => dilate(s, d, k), morphologyEx,
    getStructuringElement, threshold, divide, copyMakeBorder, minMaxLoc, mean, gray,
    useSimd: (on = true) => { simd = on ? available : null; return simd !== null; },
    bitwise_not: (a, d) => { const x = a.data, o = new Uint8Array(x.length); for (let i = 0; i < x.length; i++) o[i] = 255 - x[i]; gray(d, a.rows, a.cols, o); },
    bitwise_and: (a, b, d) => { if (simdPixels("and", a, b, d)) return; const x = a.data, y = b.data, o = new Uint8Array(x.length); for (let i = 0; i < x.length; i++) o[i] = x[i] & y[i]; gray(d, a.rows, a.cols, o); },
    subtract: (a, b, d) => { if (simdPixels("sub", a, b, d)) return; const x = a.data, y = b.data, o = new Uint8Array(x.length); for (let i = 0; i < x.length; i++) { const v = x[i] - y[i]; o[i] = v > 0 ? v : 0; } gray(d, a.rows, a.cols, o); },
    max: (a, b, d) => { if (simdPixels("max", a, b, d)) return; const x = a.data, y = b.data, o = new Uint8Array(x.length); for (let i = 0; i < x.length; i++) o[i] = x[i] > y[i] ? x[i] : y[i]; gray(d, a.rows, a.cols, o); },
    compare: (a, b, d) => { if (simdPixels("gt", a, b, d)) return; const x = a.data, y = b.data, o = new Uint8Array(x.length); for (let i = 0; i < x.length; i++) o[i] = x[i] > y[i] ? 255 : 0; gray(d, a.rows, a.cols, o); },  // CMP_GT
    countNonZero: (a) => { const x = a.data; let n = 0; for (let i = 0; i < x.length; i++) if (x[i]) n++; return n; },
  };
  (typeof self !== "undefined" ? self : globalThis).cvlite = cv;
})();
