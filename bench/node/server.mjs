// The seed's design, as bench/run's Node baseline: a node:http host that
// routes, bounds bodies, keeps an in-memory TTL cache and calls a core Wasm
// module (bench/node, built from edge-core) for parsing, the cache key and
// the rule.
//
//   node server.mjs --listen 127.0.0.1:PORT --wasm bench_node_core.wasm
//
// Prints "Serving http://ADDR" once it accepts connections.

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

const VERSION = "0.1.0";
const MAX_BODY_BYTES = 65536;
const MAX_BATCH_ITEMS = 1000;
const CACHE_TTL_SECONDS = 300;
// The same bound as the native baseline's cache: oldest entry out first.
const MAX_ENTRIES = 100_000;

function args() {
  const out = { listen: "127.0.0.1:3000", wasm: null };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === "--listen") out.listen = argv[i + 1];
    else if (argv[i] === "--wasm") out.wasm = argv[i + 1];
    else throw new Error(`unknown argument ${argv[i]}; usage: --listen ADDR:PORT --wasm FILE`);
  }
  if (!out.wasm) throw new Error("--wasm FILE is required");
  return out;
}

// The core module. Any import it has (none when built for
// wasm32-unknown-unknown) is stubbed with a trap: it needs no host.
function loadCore(path) {
  const module = new WebAssembly.Module(readFileSync(path));
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] = () => {
      throw new Error(`core module called its import ${imp.module}.${imp.name}`);
    };
  }
  const { exports } = new WebAssembly.Instance(module, imports);
  // A WASI reactor (the wasm32-wasip2 fallback build) must be initialised
  // before its other exports are called.
  exports._initialize?.();
  const encoder = new TextEncoder();

  // Writes body ++ request id into the module's input buffer.
  const write = (body, rid) => {
    const ridBytes = encoder.encode(rid);
    const ptr = exports.input_buffer(body.length + ridBytes.length);
    const mem = new Uint8Array(exports.memory.buffer, ptr, body.length + ridBytes.length);
    mem.set(body, 0);
    mem.set(ridBytes, body.length);
    return ridBytes.length;
  };
  const output = () =>
    Buffer.from(new Uint8Array(exports.memory.buffer, exports.out_ptr(), exports.out_len()));

  return {
    // → { status, key } or { status, error }
    parse(body, rid) {
      const status = exports.parse(body.length, write(body, rid));
      return status === 200 ? { status, key: output().toString("latin1") } : { status, error: output() };
    },
    // → { status, body }: the answer for the last parsed item, or the error.
    apply(now) {
      const status = exports.apply(now);
      return { status, body: output() };
    },
    batch(body, rid, now) {
      const status = exports.batch(body.length, write(body, rid), now, MAX_BATCH_ITEMS);
      return { status, body: output() };
    },
  };
}

class TtlCache {
  #map = new Map();
  get(key, now) {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry.body;
    this.#map.delete(key);
    return undefined;
  }
  put(key, body, now) {
    this.#map.set(key, { body, expiresAt: now + CACHE_TTL_SECONDS });
    if (this.#map.size > MAX_ENTRIES) this.#map.delete(this.#map.keys().next().value);
  }
}

const ROUTES = {
  "/api/health": "GET",
  "/api/process": "POST",
  "/api/process/batch": "POST",
  "/api/cache/stats": "GET",
  "/api/cache": "DELETE",
};
const SANE_ID = /^[A-Za-z0-9._-]{1,128}$/;

function errorJson(code, message, rid) {
  return JSON.stringify({ error: { code, message, request_id: rid } });
}

function isJson(contentType) {
  if (!contentType) return false;
  const [essence, ...params] = contentType.split(";");
  if (essence.trim().toLowerCase() !== "application/json") return false;
  return params.every((p) => {
    const [name, value] = p.split("=");
    if (value === undefined) return name.trim() === "";
    if (name.trim().toLowerCase() !== "charset") return true;
    return ["utf-8", "utf8"].includes(value.trim().replace(/"/g, "").toLowerCase());
  });
}

function send(res, status, body, rid, extra) {
  const headers = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-request-id": rid,
    ...extra,
  };
  res.writeHead(status, headers);
  res.end(body);
}

function main() {
  const { listen, wasm } = args();
  const core = loadCore(wasm);
  const cache = new TtlCache();

  const server = createServer((req, res) => {
    const header = req.headers["x-request-id"];
    const rid = typeof header === "string" && SANE_ID.test(header) ? header : randomUUID();
    const path = (req.url ?? "/").split("?")[0];
    const allow = ROUTES[path] ?? (path.startsWith("/api/data/") ? "GET" : undefined);
    if (allow === undefined) {
      return send(res, 404, errorJson("not_found", `no route for ${path}`, rid), rid);
    }
    if (req.method !== allow) {
      return send(res, 405, errorJson("method_not_allowed", `use ${allow}`, rid), rid, { allow });
    }
    if (path === "/api/health") {
      return send(res, 200, JSON.stringify({ status: "ok", version: VERSION, store: "ok" }), rid);
    }
    if (path !== "/api/process" && path !== "/api/process/batch") {
      // Data and admin routes need an upstream or a token: not benchmarked.
      return send(res, 404, errorJson("not_found", `no route for ${path}`, rid), rid);
    }
    if (!isJson(req.headers["content-type"])) {
      return send(res, 415, errorJson("unsupported_media_type", "send content-type: application/json", rid), rid);
    }
    const tooLarge = () =>
      send(res, 413, errorJson("payload_too_large", `the body must be at most ${MAX_BODY_BYTES} bytes`, rid), rid, {
        connection: "close",
      });
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return tooLarge();

    const chunks = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES && !failed) {
        failed = true;
        tooLarge();
        req.destroy();
      } else if (!failed) chunks.push(chunk);
    });
    req.on("end", () => {
      if (failed) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const now = Math.floor(Date.now() / 1000);
      if (path === "/api/process/batch") {
        const out = core.batch(body, rid, now);
        return send(res, out.status, out.body, rid);
      }
      const parsed = core.parse(body, rid);
      if (parsed.status !== 200) return send(res, parsed.status, parsed.error, rid);
      const hit = cache.get(parsed.key, now);
      if (hit !== undefined) return send(res, 200, hit, rid, { "x-cache": "hit" });
      const out = core.apply(now);
      if (out.status === 200) cache.put(parsed.key, out.body, now);
      return send(res, out.status, out.body, rid, out.status === 200 ? { "x-cache": "miss" } : {});
    });
  });

  const colon = listen.lastIndexOf(":");
  server.keepAliveTimeout = 65_000;
  server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon), () => {
    const addr = server.address();
    console.log(`Serving http://${addr.address}:${addr.port}`);
  });
}

main();
