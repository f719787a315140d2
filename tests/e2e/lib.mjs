// Helpers of the end-to-end tests: start native processes, wait for
// their output lines, launch headless Chromium, wait for conditions.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const outDir = resolve(root, "target/e2e");
mkdirSync(outDir, { recursive: true });

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const children = [];
export function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

/**
 * Starts a process and collects its stdout lines; `waitLine(re, ms)`
 * resolves with the first line matching `re` (rejects at the deadline, or
 * when the process exits first).
 */
export function start(name, cmd, args, env = {}) {
  const p = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(p);
  const lines = [];
  const waiters = [];
  let buf = "";
  let err = "";
  p.stdout.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) w.done(line);
    }
  });
  p.stderr.on("data", (d) => {
    err = (err + d).slice(-4000);
  });
  p.on("error", (e) => {
    err += `\n${e.message}`;
    for (const w of [...waiters]) w.fail(new Error(`${name}: ${e.message}`));
  });
  p.on("exit", (code, sig) => {
    for (const w of [...waiters]) w.fail(new Error(`${name} exited (${code ?? sig}) before printing ${w.re}; stderr:\n${err}`));
  });
  return {
    proc: p,
    lines,
    stderr: () => err,
    waitLine(re, ms = 30000) {
      const hit = lines.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const w = {
          re,
          done: (l) => {
            clearTimeout(t);
            waiters.splice(waiters.indexOf(w), 1);
            res(l);
          },
          fail: (e) => {
            clearTimeout(t);
            rej(e);
          },
        };
        const t = setTimeout(() => w.fail(new Error(`${name}: no line matching ${re} within ${ms} ms; stderr:\n${err}`)), ms);
        waiters.push(w);
      });
    },
  };
}

/** Starts `aemp run …` and returns its `host:port`, node ID and handle. */
export async function aempRun(bin, name, args) {
  const p = start(name, bin, ["run", ...args], { AEMP_LOG: process.env.AEMP_LOG ?? "warn" });
  const addr = (await p.waitLine(/^listen tcp /)).slice("listen tcp ".length);
  const node = (await p.waitLine(/^node /)).slice(5);
  return { ...p, addr, node, url: `http://${addr}/` };
}

export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

export async function browser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
}

/** Opens a page that logs its errors and console errors to our stderr. */
export async function page(b, name, url, viewport = { width: 1280, height: 760 }) {
  const ctx = await b.newContext({ viewport, deviceScaleFactor: 1 });
  const p = await ctx.newPage();
  p.on("pageerror", (e) => console.error(`[${name}] page error: ${e.message}`));
  p.on("console", (m) => {
    if (m.type() === "error") console.error(`[${name}] console: ${m.text()}`);
  });
  await p.goto(url);
  return p;
}

/** Waits until `fn(arg)` (run in the page) is truthy; the page's text is in the error. */
export async function until(p, what, fn, arg, ms = 30000) {
  try {
    await p.waitForFunction(fn, arg, { timeout: ms, polling: 100 });
  } catch (e) {
    const text = await p.evaluate(() => document.body.innerText).catch(() => "?");
    throw new Error(`timed out waiting for ${what}\n--- page text ---\n${text}\n---`);
  }
}

let failures = 0;
let passes = 0;
/** Runs one named check, printing `ok`/`FAIL`. */
export async function check(name, f) {
  const t0 = Date.now();
  try {
    await f();
    passes++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}

export function summary() {
  console.log(`e2e: ${passes} passed, ${failures} failed`);
  return failures === 0 && passes > 0;
}
