// Shared by the pages served by `aemp run`: join the network as an
// untrusted browser node through the seed that served the page.
//
// The seed answers /aemp-config.json with what a same-origin page needs:
//   {"seeds": ["ws://<host>:<port>/"], "secret": <web secret>,
//    "nodeid": "web/%u", "untrusted": true}
// Query parameters override it: ?seed=ws://host:port/ (another seed; it
// must accept the same web secret) and ?secret=… (that seed's web secret).
import init, { AempNode } from "/pkg/aemp_web.js";

export { AempNode };

/** Fetches the page configuration and starts an AempNode. */
export async function join(extra = {}) {
  const [res] = await Promise.all([fetch("/aemp-config.json", { cache: "no-store" }), init()]);
  if (!res.ok) throw new Error(`this seed serves no web secret (/aemp-config.json: ${res.status})`);
  const config = await res.json();
  const q = new URLSearchParams(location.search);
  if (q.get("seed")) config.seeds = q.getAll("seed");
  if (q.get("secret")) config.secret = q.get("secret");
  if (location.protocol === "https:") {
    config.seeds = config.seeds.map((s) => s.replace(/^ws:/, "wss:"));
  }
  return new AempNode({ ...config, ...extra });
}

/** `el("li", {class: "x"}, "text", child…)`: a DOM element; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** A value as short readable text (JSON, byte strings summarised). */
export function show(v) {
  if (typeof v === "string") return v;
  try {
    return JSON.stringify(v, (_, x) =>
      typeof x === "bigint" ? x.toString() : x instanceof Uint8Array ? `<${x.length} bytes>` : x,
    );
  } catch {
    return String(v);
  }
}

/** Local time as HH:MM:SS. */
export function clock(d = new Date()) {
  return d.toTimeString().slice(0, 8);
}

/** Keeps a status badge up to date with the node's connection to its seed. */
export function trackStatus(node, badge) {
  const update = () => {
    const up = node.isShutdown ? [] : node.upNodes();
    const master = node.isShutdown ? undefined : node.master;
    badge.textContent = node.isShutdown
      ? "stopped"
      : up.length === 0
        ? "connecting…"
        : master
          ? `online · via ${master}`
          : "online";
    badge.className = "badge " + (up.length ? "ok" : "warn");
  };
  update();
  node.monNodes(() => setTimeout(update, 0));
  setInterval(update, 2000);
  return update;
}
