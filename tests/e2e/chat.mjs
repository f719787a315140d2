// End-to-end test of the chat page (www/index.html) with two headless
// Chromium tabs on two meshed native seeds, and a native node that says
// something. Run by tests/e2e/run.sh (which builds the binaries and
// web/pkg): node tests/e2e/chat.mjs <aemp binary> <web_peer binary>
// Screenshots: target/e2e/*.png
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { aempRun, browser, check, cleanup, outDir, page, start, summary, until } from "./lib.mjs";

const [aemp, webPeer] = process.argv.slice(2).map((p) => p && resolve(p));
if (!aemp || !webPeer) {
  console.error("usage: node tests/e2e/chat.mjs AEMP_BIN WEB_PEER_BIN");
  process.exit(2);
}
const secret = "e2e-" + Math.random().toString(36).slice(2);
// No rc file of the user's: the seeds get everything from their arguments.
process.env.PERL_ANYEVENT_MP_RC = `${outDir}/no-such-rc`;
const global = '["AnyEvent::MP::Global::"]';

const seedA = await aempRun(aemp, "seedA", ["nodeid", "seedA", "binds", "127.0.0.1:0", "secret", secret, "services", global]);
const seedB = await aempRun(aemp, "seedB", [
  "nodeid", "seedB", "binds", "127.0.0.1:0", "seeds", JSON.stringify([seedA.addr]), "secret", secret, "services", global,
]);
console.log(`seeds: ${seedA.node} ${seedA.url}  ${seedB.node} ${seedB.url}`);

const b = await browser();
const shot = (p, name) => p.screenshot({ path: `${outDir}/${name}.png` });
const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
let alice, bob, native, net;

const hasMessage = ([sel, text]) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(text));

await check("both tabs join the chat (tab 1 on seed A, tab 2 on seed B) and see each other", async () => {
  alice = await page(b, "alice", `${seedA.url}?nick=alice`);
  bob = await page(b, "bob", `${seedB.url}?nick=bob`, { width: 390, height: 760 });
  for (const p of [alice, bob]) {
    await until(p, "own registration", () => document.body.dataset.ready === "1");
    await until(p, "two participants", () => document.querySelectorAll("#people li").length === 2);
  }
  const names = await alice.evaluate(texts, "#people li");
  if (!names.some((n) => n.includes("bob")) || !names.some((n) => n.includes("alice (you)")))
    throw new Error(`participants: ${names}`);
});

await check("a message typed in tab 1 appears in tab 2 (and the answer in tab 1)", async () => {
  await alice.fill("#input", "hello from alice");
  await alice.press("#input", "Enter");
  await until(bob, "alice's message", hasMessage, ["#messages li", "hello from alice"]);
  await bob.fill("#input", "hi alice, bob here");
  await bob.click("#send");
  await until(alice, "bob's answer", hasMessage, ["#messages li", "hi alice, bob here"]);
  const mine = await alice.evaluate(() => document.querySelector("#messages li.mine")?.textContent ?? "");
  if (!mine.includes("hello from alice")) throw new Error(`own message not shown as mine: ${mine}`);
});

await check('a native node\'s ["say", nick, text] appears in both tabs', async () => {
  native = start("web_peer", webPeer, ["chat-say", seedB.addr, secret, "2", "native", "hello from a native node"]);
  await native.waitLine(/^said 2$/, 30000);
  for (const p of [alice, bob]) await until(p, "the native message", hasMessage, ["#messages li", "hello from a native node"]);
});

await check("`aemp snd <port> say shell …` from a shell appears in the tab", async () => {
  const rc = `${outDir}/e2e-rc.json`;
  writeFileSync(rc, JSON.stringify({ version: 1, secret, seeds: [seedA.addr] }));
  const port = await alice.evaluate(() => window.chat.port);
  const snd = start("aemp snd", aemp, ["snd", port, "say", "shell", "hello from aemp snd"], { PERL_ANYEVENT_MP_RC: rc });
  const code = await new Promise((res) => snd.proc.on("exit", res));
  if (code !== 0) throw new Error(`aemp snd exited ${code}: ${snd.stderr()}`);
  await until(alice, "the shell's message", hasMessage, ["#messages li", "hello from aemp snd"]);
});

await check("a nick change is seen by the other tab", async () => {
  await bob.fill("#nick", "robert");
  await bob.press("#nick", "Enter");
  await bob.evaluate(() => document.getElementById("nick").dispatchEvent(new Event("change")));
  await until(alice, "the new nick", hasMessage, ["#people li", "robert"]);
  await until(alice, "the rename notice", hasMessage, ["#messages li.system", "bob is now robert"]);
});

await check("the network view shows both seeds as globals and the chat ports", async () => {
  net = await page(b, "net", `${seedA.url}net.html`);
  await until(net, "both globals", () => document.querySelectorAll("#nodes li .badge.accent").length >= 2);
  await until(net, "the chat ports", () => [...document.querySelectorAll(".ports li")].filter((e) => e.textContent.startsWith("chat:")).length >= 2);
  await shot(net, "net-desktop");
  await net.setViewportSize({ width: 390, height: 844 });
  await shot(net, "net-phone");
});

await check("a tab that closes leaves the chat", async () => {
  await shot(alice, "chat-desktop");
  await shot(bob, "chat-phone");
  await bob.context().close();
  await until(alice, "bob left", () => document.querySelectorAll("#people li").length === 1, undefined, 60000);
  await until(alice, "the leave notice", hasMessage, ["#messages li.system", "robert left"]);
});

await b.close();
cleanup();
process.exit(summary() ? 0 : 1);
