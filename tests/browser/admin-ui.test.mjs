// The admin UI end to end in Debian's headless Chromium: a real gateway binary on SQLite, a real
// receiver on 127.0.0.1, a webhook signed and posted by `gateway simulate`. Run by .ci/run:
//   UI_TEST_BIN=target/debug/gateway node tests/browser/admin-ui.test.mjs
// SCREENSHOTS=docs/screenshots also writes the README's screenshots.
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import http from "node:http";
import net from "node:net";
import crypto from "node:crypto";
import assert from "node:assert/strict";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = resolve(root, process.env.UI_TEST_BIN || "target/debug/gateway");
const shots = process.env.SCREENSHOTS ? resolve(root, process.env.SCREENSHOTS) : null;
const publicPem = readFileSync(join(root, "tests/fixtures/keys/vectorcare_public.pem"), "utf8");
const privateKey = join(root, "tests/fixtures/keys/vectorcare_private.pem");

const freePort = () => new Promise((ok) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
});

// A receiver whose answer the test switches.
let receiverStatus = 500;
const received = [];
const receiver = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => { body += c; });
  req.on("end", () => { received.push({ status: receiverStatus, body }); res.writeHead(receiverStatus).end("receiver says " + receiverStatus); });
});
await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
const receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), "gateway-ui-"));
const env = {
  ...process.env,
  DATABASE_URL: "",
  GATEWAY_DATA_DIR: dir,
  GATEWAY_MASTER_KEY: crypto.randomBytes(32).toString("base64"),
  GATEWAY_LISTEN: `127.0.0.1:${port}`,
  GATEWAY_PUBLIC_URL: base,
  GATEWAY_ALLOW_HTTP_ENDPOINTS: "true",
  GATEWAY_SSRF_ALLOWLIST: "127.0.0.1/32",
  // One attempt now, the next in an hour: the test redelivers by hand.
  GATEWAY_DELIVERY_RETRY_SCHEDULE: "0s,1h",
  GATEWAY_LOG: "warn",
  // One failed verification is a burst here: the Alerts page has something to show.
  GATEWAY_ALERT_VERIFICATION_FAILURES: "1",
};
// SQLite in the temporary folder, or the PostgreSQL database the Rust harness created.
if (process.env.UI_TEST_DATABASE_URL) env.DATABASE_URL = process.env.UI_TEST_DATABASE_URL;
else delete env.DATABASE_URL;
execFileSync(bin, ["migrate", "up"], { env, stdio: "inherit" });
const token = execFileSync(bin, ["token", "create", "--role", "admin", "--name", "browser test"], { env }).toString().trim();
const gateway = spawn(bin, ["serve"], { env, stdio: ["ignore", "inherit", "inherit"] });
for (let i = 0; ; i++) {
  try { if ((await fetch(`${base}/readyz`)).ok) break; } catch {}
  if (i > 100) throw new Error("the gateway did not start");
  await new Promise((r) => setTimeout(r, 100));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });
  // Nothing may load from anywhere but the gateway.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });

  // Log in by pasting the token; a wrong one is refused in plain words.
  await page.goto(`${base}/admin`);
  await page.getByLabel("API token").fill("not-a-token");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").getByText("code: malformed_token").waitFor();
  await page.getByLabel("API token").fill(token);
  await page.getByLabel("API token").press("Enter"); // the keyboard alone gets in
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();

  // Create a tenant.
  await page.getByRole("link", { name: "Tenants" }).click();
  await page.getByText("No tenants match").waitFor();
  await page.getByLabel("Slug").fill("acme-health");
  await page.getByLabel("Name", { exact: true }).fill("Acme Health");
  await page.getByRole("button", { name: "Create tenant" }).click();
  await page.getByRole("heading", { name: "Acme Health" }).waitFor();

  // A VectorCare connection with a key; the webhook URL to copy is shown.
  await page.locator("#vectorcare-key").fill(publicPem);
  await page.locator("#conn-vectorcare").getByRole("button", { name: "Connect with this key" }).click();
  await page.getByRole("button", { name: "Copy VectorCare webhook URL" }).waitFor();
  const webhookUrl = (await page.locator("#conn-vectorcare code.mono").first().textContent()).trim();
  assert.match(webhookUrl, /\/webhooks\/vectorcare\//);

  // An endpoint: its signing secret is shown once.
  await page.getByRole("link", { name: "Endpoints" }).click();
  await page.getByText("No endpoints yet").waitFor();
  await page.getByLabel("URL", { exact: true }).fill(receiverUrl);
  await page.getByRole("button", { name: "Add endpoint" }).click();
  const secret = await page.locator("[data-secret]").textContent();
  assert.match(secret, /^whsec_/);
  await page.getByRole("cell", { name: receiverUrl }).waitFor();
  await page.getByText("payload: full").waitFor();

  // The receiver fails; a signed webhook arrives.
  receiverStatus = 500;
  execFileSync(bin, ["simulate", "vectorcare", "--url", webhookUrl, "--key", privateKey, "--scenario", "broadcast"], { env, stdio: "inherit" });
  for (let i = 0; received.length === 0; i++) {
    if (i > 100) throw new Error("the failing delivery was never attempted");
    await new Promise((r) => setTimeout(r, 100));
  }

  // The event and its failed delivery in the UI.
  await page.getByRole("link", { name: "Events" }).click();
  const eventLink = page.getByRole("link", { name: /^transport\.request\./ }).first();
  await eventLink.waitFor();
  await eventLink.click();
  // Patient fields are hidden until revealed; revealing is a recorded access.
  await page.getByRole("heading", { name: "Normalized, patient and address fields hidden" }).waitFor();
  if (await page.getByText("Margaret").count() !== 0) throw new Error("a patient's name shown before reveal");
  await page.getByRole("button", { name: "Reveal patient data" }).click();
  await page.getByRole("heading", { name: "Normalized (sent to endpoints)" }).waitFor();
  await page.getByRole("heading", { name: "Raw webhook" }).waitFor();
  await page.getByText("Margaret").first().waitFor();
  await page.getByRole("cell", { name: "HTTP 500" }).waitFor();

  // The receiver recovers; redeliver from the UI and see it succeed.
  receiverStatus = 200;
  await page.getByRole("button", { name: /^Redeliver/ }).first().click();
  await page.getByText("Queued for delivery now.").waitFor();
  for (let i = 0; ; i++) {
    await page.getByRole("link", { name: /^dlv_/ }).first().click();
    const ok = await page.getByText("HTTP 200").count();
    if (ok) break;
    if (i > 50) throw new Error("the redelivery never succeeded in the UI");
    await page.waitForTimeout(200);
    await page.goBack();
  }
  await page.getByRole("cell", { name: "HTTP 500" }).waitFor(); // both attempts are listed
  assert.ok(received.some((r) => r.status === 200));

  // The subject's timeline, normalized and raw side by side.
  await page.getByRole("link", { name: "event", exact: true }).click();
  await page.getByRole("link", { name: /^timeline of / }).click();
  await page.getByRole("heading", { name: /^Timeline of / }).waitFor();
  await page.getByRole("button", { name: "Reveal normalized and raw" }).first().click();
  await page.getByRole("heading", { name: "Raw", exact: true }).waitFor();
  if (shots) { mkdirSync(shots, { recursive: true }); await page.screenshot({ path: join(shots, "timeline.png"), fullPage: true }); }

  // The dashboard charts what happened.
  await page.getByRole("link", { name: "Dashboard" }).click();
  const chart = page.getByRole("img", { name: /webhooks/ });
  await chart.waitFor();
  assert.match(await chart.getAttribute("aria-label"), /1 webhooks, 1 deliveries, 1 failed attempts/);
  if (shots) await page.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });

  // A pull endpoint: no URL; its reader gets a token that reads this endpoint only.
  await page.getByRole("link", { name: "Tenants" }).click();
  await page.getByRole("link", { name: "Acme Health" }).click();
  await page.getByRole("link", { name: "Endpoints" }).click();
  await page.getByText(`kind: push`).waitFor();
  await page.getByLabel("Kind").selectOption("pull");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByText("kind: pull").waitFor();
  await page.getByText(/sequence: 0 · cursor 0 · backlog 0/).waitFor();
  await page.getByRole("button", { name: "New reader token" }).click();
  const reader = (await page.locator("[data-secret]", { hasText: /^eyJ/ }).textContent()).trim();
  const pullUrl = (await page.locator("code", { hasText: /\/endpoints\/ep_.*\/events$/ }).first().textContent()).trim();
  const read = await fetch(pullUrl, { headers: { authorization: `Bearer ${reader}` } });
  assert.equal(read.status, 200, "the reader token reads its endpoint");
  const elsewhere = await fetch(`${base}/api/v1/tenants`, { headers: { authorization: `Bearer ${reader}` } });
  assert.equal(elsewhere.status, 403, "and nothing else");

  // A forged webhook: the operators' alert shows on the Alerts page.
  const forged = await fetch(webhookUrl, { method: "POST", headers: { "x-vectorcare-signature": "Zm9yZ2Vk" }, body: "{}" });
  assert.equal(forged.status, 401);
  await page.waitForTimeout(300);
  await page.getByRole("link", { name: "Alerts" }).click();
  await page.getByRole("heading", { name: "Alerts" }).waitFor();
  await page.getByRole("cell", { name: "verification_failures" }).first().waitFor();

  // Narrow screens: nothing wider than the phone.
  await page.setViewportSize({ width: 380, height: 800 });
  await page.getByRole("link", { name: "Tenants" }).click();
  await page.getByRole("link", { name: "Acme Health" }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than a 380px screen`);

  assert.deepEqual(foreign, [], "requests left the gateway's origin");
  assert.deepEqual(pageErrors.filter((e) => !/401|404|Failed to load resource/.test(e)), [], "page errors");
  console.log("admin UI browser test: ok");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  gateway.kill("SIGTERM");
  receiver.close();
}
process.exit(failed ? 1 : 0);
