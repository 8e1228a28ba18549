// Which marks are the digit, as digitsum_edge/vision/marks.py decides it, function for function. A mark is
// {area, rect: [x, y, w, h], contour: a contour Mat}, in the preprocessing's working pixels.
"use strict";

function touchesEdge([x, y, w, h], [ix, iy, iw, ih]) {
  // the mark's box reaches the edge of `inner` (the region, or the picture within its padding)
  return x <= ix || y <= iy || x + w >= ix + iw || y + h >= iy + ih;
}

function alongSide([bx, by, bw, bh], [x, y, w, h]) {
  // a band along a side of `rect`: touches it, runs along 90 % of it, a third of the way in at most
  const level = (by <= y || by + bh >= y + h) && bw >= 0.9 * w && bh <= h / 3;
  return level || ((bx <= x || bx + bw >= x + w) && bh >= 0.9 * h && bw <= w / 3);
}

function centralBox([bx, by, bw, bh], [x, y, w, h]) {
  // the box's centre lies in the middle half of `rect`, across and down
  return Math.abs(bx + bw / 2 - x - w / 2) <= w / 4 && Math.abs(by + bh / 2 - y - h / 2) <= h / 4;
}

function central(cv, contour, [x, y, w, h]) {
  // the mark's centre of mass, or its box's centre, lies in the middle half of `rect`
  const m = cv.moments(contour, false);
  const b = cv.boundingRect(contour);
  const centres = [[b.x + b.width / 2, b.y + b.height / 2]];
  if (m.m00 > 0) centres.push([m.m10 / m.m00, m.m01 / m.m00]);  // a hairline's outline encloses nothing
  return centres.some(([cx, cy]) => Math.abs(cx - x - w / 2) <= w / 4 && Math.abs(cy - y - h / 2) <= h / 4);
}

function markWidth(cv, blob) {
  // how wide a mark's strokes are: twice its area over its outline's length
  return 2.0 * blob.area / Math.max(cv.arcLength(blob.contour, true), 1.0);
}

function firstLargest(blobs) {  // Python's max(..., key=area): the first of the largest
  return blobs.reduce((best, b) => (b.area > best.area ? b : best));
}

function digitBlobs(seed, joinable) {
  // the seed mark and the marks close to it, and to those, and their box
  let [x, y, w, h] = seed.rect;
  const chosen = [seed.contour];
  const rest = joinable.filter((b) => b !== seed).sort((a, b) => b.area - a.area);  // stable, like sorted()
  let joined = true;
  while (joined) {  // until no mark is close to the growing box
    joined = false;
    for (const b of [...rest]) {
      const [bx, by, bw, bh] = b.rect;
      const margin = 0.4 * Math.max(w, h);
      if (bx < x + w + margin && x - margin < bx + bw && by < y + h + margin && y - margin < by + bh) {
        const x1 = Math.min(x, bx), y1 = Math.min(y, by);
        [x, y, w, h] = [x1, y1, Math.max(x + w, bx + bw) - x1, Math.max(y + h, by + bh) - y1];
        chosen.push(b.contour);
        rest.splice(rest.indexOf(b), 1);
        joined = true;
      }
    }
  }
  return [[x, y, w, h], chosen];
}

function pictureDigit(cv, blobs, inner, minSide) {
  // the digit in a whole picture: marks gathered into groups by nearness and pen width; the group with a mark
  // inside the picture at least `minSide` long, else a central one, the largest; null: only marks at the border
  let pool = [...blobs], best = null, bestRank = null;
  for (;;) {
    const seeds = pool.filter((b) => !alongSide(b.rect, inner));  // a band along a side joins, never leads
    if (!seeds.length) break;
    const seed = firstLargest(seeds);
    const width = markWidth(cv, seed);
    const [box, chosen] = digitBlobs(seed, pool.filter((b) => b === seed ||
      (0.5 * width <= markWidth(cv, b) && markWidth(cv, b) <= 1.5 * width)));
    const members = pool.filter((b) => chosen.includes(b.contour));
    pool = pool.filter((b) => !chosen.includes(b.contour));
    const inside = members.some((b) => !touchesEdge(b.rect, inner) && Math.max(b.rect[2], b.rect[3]) >= minSide);
    const middle = centralBox(box, inner) || members.some((b) => central(cv, b.contour, inner));
    if (!(inside || middle)) continue;
    const rank = [inside ? 1 : 0, members.reduce((total, b) => total + b.area, 0)];
    if (bestRank === null || rank[0] > bestRank[0] || (rank[0] === bestRank[0] && rank[1] > bestRank[1])) {
      best = [box, chosen];
      bestRank = rank;
    }
  }
  return best;
}

self.DigitsumMarks = {touchesEdge, alongSide, centralBox, central, markWidth, firstLargest, digitBlobs, pictureDigit};
