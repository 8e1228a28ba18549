// The webcam page of `digitsum-edge serve`: camera frames -> POST v1/read a few times a second -> the digit,
// rand and sum drawn over the video. Plain browser JavaScript, no build step and nothing fetched from elsewhere.
"use strict";

const INTERVAL_MS = 200;  // at most five frames a second, one request in flight at a time
const JPEG_QUALITY = 0.85;

const video = document.getElementById("video");
const overlay = document.getElementById("overlay");
const result = document.getElementById("result");
const detail = document.getElementById("detail");
const statusLine = document.getElementById("status");
const randSelect = document.getElementById("rand");
const grab = document.createElement("canvas");  // the frame sent to the server, at the camera's resolution

let roi = null;  // from GET v1/model: the square the server reads, drawn as a guide once known
let numRand = 10;
let rand = 0;
let lastDigit = null;  // random mode: a new rand when a new digit shows up (like `live` without --rand)
let frames = 0;
let reading = null;

function setStatus(text, error = false) {
  statusLine.textContent = text;
  statusLine.className = error ? "error" : "";
}

function drawRand() {
  rand = Math.floor(Math.random() * numRand);
}

function nextRand(r) {
  // random mode: after a reading, a new rand when a digit left or another digit showed up
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
    ctx.lineWidth = Math.max(2, w / 320);
    ctx.strokeStyle = "rgba(255, 255, 255, 0.7)";
    ctx.setLineDash([10, 8]);
    ctx.strokeRect((w - side) / 2, (h - side) / 2, side, side);
    ctx.setLineDash([]);
  }
  if (!reading || !reading.found) return;
  const [x, y, bw, bh] = reading.box;
  ctx.strokeStyle = "#3f3";
  ctx.strokeRect(x, y, bw, bh);
  const text = `${reading.digit} + ${reading.rand} = ${reading.sum}`;
  ctx.font = `600 ${Math.round(h / 10)}px system-ui, sans-serif`;
  ctx.lineWidth = Math.max(3, w / 200);
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#3f3";
  const ty = Math.max(h / 10, y - h / 40);
  ctx.strokeText(text, x, ty);
  ctx.fillText(text, x, ty);
}

function show(r) {
  reading = r;
  frames += 1;
  Object.assign(result.dataset, {found: String(r.found), digit: r.digit ?? "", rand: r.rand, sum: r.sum ?? "",
                                 frames: String(frames)});
  if (r.found) {
    result.innerHTML = `<span id="digit">${r.digit}</span> <span class="op">+</span> ` +
      `<span id="rand-shown">${r.rand}</span> <span class="op">=</span> <span id="sum">${r.sum}</span>`;
    detail.textContent = `digit ${(100 * r.digit_confidence).toFixed(1)} %, sum ` +
      `${(100 * r.sum_confidence).toFixed(1)} % | ${r.ms.toFixed(1)} ms on the server (${r.provider})`;
  } else {
    result.innerHTML = "&nbsp;";
    detail.textContent = `no digit (${r.reason}) | rand ${r.rand}`;
  }
  draw();
}

async function readFrame() {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return;
  if (overlay.width !== w || overlay.height !== h) {
    overlay.width = grab.width = w;
    overlay.height = grab.height = h;
  }
  grab.getContext("2d").drawImage(video, 0, 0, w, h);
  const blob = await new Promise((done) => grab.toBlob(done, "image/jpeg", JPEG_QUALITY));
  const value = randSelect.value === "random" ? rand : Number(randSelect.value);
  const response = await fetch(`v1/read?rand=${value}`, {method: "POST", body: blob,
                                                         headers: {"Content-Type": "image/jpeg", ...AUTH}});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  show(body);
  nextRand(body);
  setStatus(`${w}x${h} camera | ${frames} frames read`);
}

// `serve --token`: the page is opened as http(s)://host:port/#token=TOKEN; the fragment never reaches a server,
// and every request to /v1 carries it as a bearer token.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const AUTH = TOKEN ? {"Authorization": `Bearer ${TOKEN}`} : {};

async function loop() {
  const started = performance.now();
  try {
    await readFrame();
  } catch (e) {
    setStatus(`server: ${e.message}`, true);
  }
  setTimeout(loop, Math.max(0, INTERVAL_MS - (performance.now() - started)));
}

async function main() {
  try {
    const model = await (await fetch("v1/model", {headers: AUTH})).json();
    roi = model.serving.roi;
    numRand = model.metadata.num_rand;
  } catch (e) {
    setStatus(`cannot reach the service: ${e.message}`, true);
  }
  drawRand();
  randSelect.addEventListener("change", () => { lastDigit = null; if (randSelect.value === "random") drawRand(); });
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("this browser gives no camera here (it needs https, or http://localhost)", true);
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
  } catch (e) {
    setStatus(`no camera: ${e.name}: ${e.message}`, true);
    return;
  }
  await video.play().catch(() => {});
  setStatus("camera on");
  loop();
}

main();
