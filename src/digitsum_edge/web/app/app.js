// The app: camera frames -> the reader on this device (reader.js) a few times a second -> the digit, rand and sum
// drawn over the video. Served by `digitsum-edge serve`, it can also send the frames to the server's v1/read (with
// the token from the URL's fragment, #token=...): "read on" offers both, this device first (#where=server chooses
// the server; so does a browser that cannot run the model). Offline after the first load.
"use strict";

const INTERVAL_MS = 200;  // at most five frames a second
const JPEG_QUALITY = 0.85;  // frames sent to a server
const WARMUP = 5;  // the first readings compile and allocate: left out of the figures
const TIMINGS = 200;  // the last this many readings' milliseconds, for the figures shown and window.digitsum.stats

const video = document.getElementById("video");
const overlay = document.getElementById("overlay");
const result = document.getElementById("result");
const detail = document.getElementById("detail");
const statusLine = document.getElementById("status");
const randSelect = document.getElementById("rand");
const whereSelect = document.getElementById("where");
const grab = document.createElement("canvas");  // the frame read, at the camera's resolution

const fragment = new URLSearchParams(location.hash.slice(1));  // never sent to a server
const token = fragment.get("token");
let reader = null;
let roi = null;  // the square read, drawn as a guide
let served = null;  // how the server reads (its --roi, --ink, --min-confidence), once v1/model said it: the device
// reads so too
let numRand = 10;
let rand = 0;
let lastDigit = null;  // random mode: a new rand when a new digit shows up (like `live` without --rand)
let frames = 0;
let reading = null;
let paused = false;  // window.digitsum.pause(): the camera stays on, nothing is read
const timings = [];

function setStatus(text, error = false) {
  statusLine.textContent = text;
  statusLine.className = error ? "error" : "";
}

function drawRand() {
  rand = Math.floor(Math.random() * numRand);
}

function nextRand(r) {
  if (!r.found) {
    if (lastDigit !== null) drawRand();
    lastDigit = null;
  } else {
    if (lastDigit !== null && r.digit !== lastDigit) drawRand();
    lastDigit = r.digit;
  }
}

function draw() {
  const w = overlay.width, h = overlay.height;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  if (roi !== null) {
    const side = roi * Math.min(w, h);
    strokeGuide(ctx, (w - side) / 2, (h - side) / 2, side, Math.max(2, w / 320));
  }
  if (!reading || !reading.found) return;
  const [x, y, bw, bh] = reading.box;
  const colour = reading.uncertain ? "#fc6" : "#3f3";
  ctx.strokeStyle = colour;
  ctx.strokeRect(x, y, bw, bh);
  const text = `${reading.digit}${reading.uncertain ? "?" : ""} + ${reading.rand} = ${reading.sum}`;
  ctx.font = `600 ${Math.round(h / 10)}px system-ui, sans-serif`;
  ctx.lineWidth = Math.max(3, w / 200);
  ctx.strokeStyle = "#000";
  ctx.fillStyle = colour;
  const ty = Math.max(h / 10, y - h / 40);
  ctx.strokeText(text, x, ty);
  ctx.fillText(text, x, ty);
}

function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}

function span(id, text, className = "") {  // text only: what a server sends is never parsed as HTML
  const element = document.createElement("span");
  if (id) element.id = id;
  element.className = className;
  element.textContent = text;
  return element;
}

function show(r, where) {
  reading = r;
  frames += 1;
  Object.assign(result.dataset, {found: String(r.found), digit: r.digit ?? "", rand: r.rand, sum: r.sum ?? "",
                                 uncertain: String(Boolean(r.uncertain)), frames: String(frames), where});
  result.className = r.uncertain ? "uncertain" : "";
  if (r.found) {
    result.replaceChildren(span("digit", `${r.digit}${r.uncertain ? "?" : ""}`), " ", span(null, "+", "op"), " ",
                           span("rand-shown", String(r.rand)), " ", span(null, "=", "op"), " ", span("sum", String(r.sum)));
    const sure = r.uncertain ? " (uncertain)" : "";
    const place = where === "device" ? "on this device" : `on the server (${r.provider})`;
    detail.textContent = `digit ${(100 * r.digit_confidence).toFixed(1)} %${sure}, sum ` +
      `${(100 * r.sum_confidence).toFixed(1)} % | ${r.ms.toFixed(1)} ms ${place}`;
  } else {
    result.textContent = "\u00a0";
    detail.textContent = `no digit (${r.reason}) | rand ${r.rand}`;
  }
  draw();
}

async function readOnServer(value) {
  const blob = await new Promise((done) => grab.toBlob(done, "image/jpeg", JPEG_QUALITY));
  const headers = {"Content-Type": "image/jpeg"};
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`v1/read?rand=${value}`, {method: "POST", body: blob, headers});
  const body = await response.json();
  const hint = response.status === 401 ? " (open this page as https://HOST/#token=THE-TOKEN)" : "";
  if (!response.ok) throw new Error(`${body.error || `HTTP ${response.status}`}${hint}`);
  return body;
}

async function readFrame() {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return;
  if (overlay.width !== w || overlay.height !== h) {
    overlay.width = grab.width = w;
    overlay.height = grab.height = h;
    document.getElementById("stage").style.aspectRatio = `${w} / ${h}`;  // a phone's camera is often upright
  }
  const context = grab.getContext("2d", {willReadFrequently: true});
  context.drawImage(video, 0, 0, w, h);
  const value = randSelect.value === "random" ? rand : Number(randSelect.value);
  const where = whereSelect.value;
  const r = where === "device" ? await reader.read(context.getImageData(0, 0, w, h), value) : await readOnServer(value);
  if (where === "device" && frames >= WARMUP) {
    timings.push(r.ms);
    if (timings.length > TIMINGS) timings.shift();
  }
  show(r, where);
  nextRand(r);
  const median = percentile(timings, 0.5);
  const speed = where === "device" && median !== null ? ` | median ${median.toFixed(2)} ms on this device` : "";
  const cached = window.digitsum.offline ? ` | ${window.digitsum.offline}` : "";
  setStatus(`${w}x${h} camera | ${frames} frames read${speed}${cached}`);
}

async function loop() {
  const started = performance.now();
  try {
    if (!paused) await readFrame();
  } catch (e) {
    setStatus(`${whereSelect.value === "device" ? "reader" : "server"}: ${e.message}`, true);
  }
  setTimeout(loop, Math.max(0, INTERVAL_MS - (performance.now() - started)));
}

async function offerServer() {
  // under `digitsum-edge serve` the page can also read on the server (a 401: it wants #token=...); on a static
  // host v1/model is not there. Whether the server is offered.
  try {
    const headers = token ? {Authorization: `Bearer ${token}`} : {};
    const response = await fetch("v1/model", {headers});
    if (!(response.headers.get("Content-Type") || "").includes("json") || !(response.ok || response.status === 401)) {
      return false;
    }
    if (response.ok) served = (await response.json()).serving ?? null;
    document.getElementById("where-label").hidden = false;
    return true;
  } catch (e) {
    return false;  // offline or a static host: this device only
  }
}

async function registerWorker() {
  if (!("serviceWorker" in navigator)) return "no service worker here (it needs https or localhost)";
  try {
    await navigator.serviceWorker.register("sw.js");
    await navigator.serviceWorker.ready;
    return "works offline";
  } catch (e) {
    return `no offline copy (${e.message})`;
  }
}

async function main() {
  const offline = registerWorker();
  const offered = offerServer();
  let failure = null;
  try {
    reader = await DigitReader.open();
    roi = reader.settings.reading.roi;
    numRand = reader.model.num_rand;
    window.digitsum.reader = reader;
  } catch (e) {
    failure = e;
  }
  const onServer = await offered;
  if (served !== null) {  // under serve, both ways of reading take the server's settings
    roi = served.roi;
    if (reader !== null) reader.useSettings(served);
  }
  if (reader === null && !onServer) {
    setStatus(`cannot load the model: ${failure.message}`, true);
    return;
  }
  if (reader === null) whereSelect.querySelector("option[value=device]").disabled = true;
  if (onServer && (reader === null || fragment.get("where") === "server")) whereSelect.value = "server";
  drawRand();
  randSelect.addEventListener("change", () => { lastDigit = null; if (randSelect.value === "random") drawRand(); });
  offerPhoto();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    noCamera("this browser gives no camera here (it needs https, or http://localhost)");
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480,
                                                                         facingMode: "environment"}, audio: false});
  } catch (e) {
    noCamera(`no camera: ${e.name}: ${e.message}`);
    return;
  }
  await video.play().catch(() => {});
  setStatus("camera on");
  cameraOn = true;
  offline.then((state) => { window.digitsum.offline = state; });
  loop();
}

function strokeGuide(ctx, x, y, side, width) {
  // the square to hold the digit in: white dashes over a dark line, seen on white paper as on a dark scene
  ctx.lineWidth = width + 2;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.75)";
  ctx.strokeRect(x, y, side, side);
  ctx.lineWidth = width;
  ctx.strokeStyle = "rgba(255, 255, 255, 0.95)";
  ctx.setLineDash([10, 8]);
  ctx.strokeRect(x, y, side, side);
  ctx.setLineDash([]);
}

// A photo instead of the camera (the photo button): the phone's own camera app or its gallery give one even where
// the page gets no camera (plain http from another computer, a denied permission). It is read whole, as `predict`
// reads a still framed on its digit, and shown where the video was; a tap on it goes back to the camera.
const PHOTO_SIDE = 1280;  // a phone's 12-megapixel photo is scaled down to this longer side first
const still = document.getElementById("still");
const photoInput = document.getElementById("photo");
let cameraOn = false;

function noCamera(why) {
  setStatus(`${why}: read a photo with the button below instead`);
  document.getElementById("photo-label").classList.add("primary");
}

async function readPhoto(file) {
  if (reader === null) throw new Error("the model is not loaded on this device");
  paused = true;  // the camera, if on, stops replacing the reading
  const bitmap = await createImageBitmap(file, {imageOrientation: "from-image"});
  const scale = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.round(bitmap.width * scale), h = Math.round(bitmap.height * scale);
  still.width = overlay.width = grab.width = w;
  still.height = overlay.height = grab.height = h;
  still.getContext("2d").drawImage(bitmap, 0, 0, w, h);
  const context = grab.getContext("2d", {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0, w, h);
  document.getElementById("stage").style.aspectRatio = `${w} / ${h}`;
  still.hidden = false;
  video.hidden = true;
  const value = randSelect.value === "random" ? rand : Number(randSelect.value);
  const guide = roi;
  const asSet = reader.preprocessConfig.roi;
  reader.setRoi(1.0);  // the whole photo, as predict reads a still
  try {
    roi = null;  // no guide square over a photo
    const r = await reader.read(context.getImageData(0, 0, w, h), value);
    show(r, "device");
    result.dataset.photo = "true";
    nextRand(r);
    setStatus(`photo ${file.name || ""} ${w}x${h} read on this device` + (cameraOn ? " | tap it for the camera" : ""));
  } finally {
    reader.setRoi(asSet);
    roi = guide;
  }
}

function offerPhoto() {
  photoInput.addEventListener("change", () => {
    const file = photoInput.files && photoInput.files[0];
    if (!file) return;
    readPhoto(file).catch((e) => setStatus(`photo: ${e.message}`, true)).finally(() => { photoInput.value = ""; });
  });
  document.getElementById("stage").addEventListener("click", () => {
    if (still.hidden || !cameraOn) return;
    still.hidden = true;
    video.hidden = false;
    result.dataset.photo = "false";
    paused = false;
  });
}

// What tests and curious users can look at: the reader, the service worker's state, the reading times.
window.digitsum = {
  reader: null,
  offline: null,
  pause: (on = true) => { paused = on; },
  stats: () => ({count: timings.length, median_ms: percentile(timings, 0.5), p90_ms: percentile(timings, 0.9),
                 isolated: self.crossOriginIsolated}),
};
main();
