// The app's service worker: every file of the folder is cached at install, so the app starts and reads offline
// after its first load. `digitsum-edge web` writes the version (a digest of the files) and the list below.
// Responses carry COOP/COEP, so the page is cross-origin isolated (a fine performance.now()) on any static host.
"use strict";

const VERSION = "__VERSION__";
const FILES = __FILES__;
const CACHE = `digitsum-edge-${VERSION}`;
const scope = new URL(self.registration.scope);
const cached = new Set(FILES.map((f) => new URL(f, scope).href));

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("digitsum-edge-") && n !== CACHE)
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

function isolated(response) {
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "require-corp");
  headers.set("Cross-Origin-Resource-Policy", "same-origin");
  return new Response(response.body, {status: response.status, statusText: response.statusText, headers});
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  url.hash = "";
  url.search = "";
  if (event.request.method !== "GET" || !cached.has(url.href)) return;  // v1/read and the like: the network
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(url.href))
    .then((hit) => hit || fetch(event.request))
    .then(isolated));
});
