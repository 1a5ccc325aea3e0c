// Shared by the browser scenarios: Debian's Chromium through playwright-core (no browser
// download), a fresh profile per scenario, screenshots under target/screenshots/, sign-in, and
// signed submissions through the JSON API for the cases a scenario needs to exist first.
import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash, createHmac, createPrivateKey, sign as nodeSign, constants, randomUUID } from "node:crypto";

export const BASE = (process.env.CARIMBO_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const PASSWORD = "carimbo-demo-2026";
export const keyFile = (person) => join(REPO, "seeds", "pki", "people", `${person}.key.pem`);
const SHOTS = join(REPO, "target", "screenshots");

/** A fresh Chromium profile; returns {context, page, close}. */
export async function browser(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), "carimbo-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1100, height: 900 },
    ...options,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  // A page without JavaScript cannot run axe itself: `accessible` checks a copy of its DOM.
  page.carimboNoScript = options.javaScriptEnabled === false;
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // A page may answer 422 (a form with errors): only failed scripts, styles and API calls count.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`); });
  page.on("response", (r) => {
    const kind = r.request().resourceType();
    if (r.status() >= 400 && (kind === "script" || kind === "stylesheet" || kind === "image")) problems.push(`${r.status()} ${r.url()}`);
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, problems, close };
}

const AXE = readFileSync(join(REPO, "tests", "browser", "node_modules", "axe-core", "axe.min.js"), "utf8");

/**
 * axe-core on the page as it is now (WCAG 2.1 A and AA rules); throws on any serious or critical
 * violation. Injected through the DevTools protocol, so the page's CSP (`script-src 'self'`)
 * stays as it is.
 */
export async function accessible(page, name) {
  if (page.carimboNoScript) return accessibleCopy(page, name);
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }, resultTypes: ["violations"] });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
  });
  if (violations.length) throw new Error(`axe on ${name} (${page.url()}):\n  ${violations.join("\n  ")}`);
}

/** axe on a copy of a script-less page's DOM (with its style sheet), in a browser with scripts. */
async function accessibleCopy(page, name) {
  const html = (await page.content()).replace("<head>", `<head><base href="${BASE}/">`);
  const b = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  try {
    const copy = await (await b.newContext({ viewport: page.viewportSize() || { width: 1100, height: 900 } })).newPage();
    await copy.setContent(html, { waitUntil: "load" });
    copy.carimboNoScript = false;
    await accessible(copy, `${name} (without JavaScript)`);
  } finally {
    await b.close();
  }
}

// Words a Chinese page may show in Latin letters: the product and its commands (carimbo check,
// carimbo verify, carimbo trust sign), the language switch, and technical names that are the
// same in every language.
const LATIN_ALLOWED = new Set(["carimbo", "English", "Português", "PEM", "PKCS#8", "PRIVATE", "KEY", "RSA", "JSON", "UTC", "ICD", "TOTP", "MiB", "KiB", "YYYY-MM-DD", "verify", "check", "trust", "sign", "Asia/Macau"]);

/**
 * The English words a Chinese page shows, outside ids, codes and names: every text node and
 * every aria-label, title and placeholder, except inside code, kbd, samp, an element marked with
 * another language (`lang="en"`), people's own text (comments, reasons, typed values) and
 * tokens with digits (ids such as p003, C-…, file names).
 */
export async function englishWords(page) {
  return page.evaluate((allowed) => {
    const skip = "code, kbd, samp, script, style, noscript, textarea, select option[value=''] ~ option[data-name], [lang]:not([lang^='zh']), [translate='no'], .hidden-char, blockquote, q, .value, #withdraw-reason, #signed-in-as";
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest(skip) || el.closest("[hidden]")) continue;
      texts.push(n.textContent);
    }
    for (const el of document.body.querySelectorAll("[aria-label], [title], [placeholder]")) {
      if (el.closest(skip)) continue;
      for (const a of ["aria-label", "title", "placeholder"]) if (el.getAttribute(a)) texts.push(el.getAttribute(a));
    }
    const found = new Set();
    for (const t of texts) {
      for (const raw of t.split(/[\s,;:()（）「」、，。：；·…]+/)) {
        const token = raw.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9#]+$/g, "");
        // Ids and codes: anything with a digit (p003, C-…, CARIMBO-E0722) or short capitals (DAF).
        if (/[0-9]/.test(token) || /^[A-Z]{2,5}$/.test(token) || /^[\w-]+\.(json|pem|jsonl|csv)$/.test(token) || !/[A-Za-z]{2,}/.test(token) || allowed.includes(token)) continue;
        found.add(token);
      }
    }
    return [...found];
  }, [...LATIN_ALLOWED]);
}

/**
 * Every page state a scenario visits goes through here: a full-page screenshot as
 * target/screenshots/<name>.png, axe-core's check, and on a Chinese page the check that no
 * English words show.
 */
export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await accessible(page, name);
  if ((await page.getAttribute("html", "lang") || "").startsWith("zh")) {
    const words = await englishWords(page);
    if (words.length) throw new Error(`English words on the Chinese page ${name} (${page.url()}): ${words.join(", ")}`);
  }
}

/** Signs in through the login page; lands on the inbox (approvers) or the forms list. */
export async function login(page, person, lang) {
  await page.goto(`${BASE}/login${lang ? `?lang=${lang}` : ""}`);
  await page.fill("input[name=person]", person);
  await page.fill("input[name=password]", PASSWORD);
  await Promise.all([page.waitForURL(/\/(forms|inbox)$/), page.click("button[type=submit]")]);
}

/** A date `days` from today, as YYYY-MM-DD. */
export function isoDate(date) {
  return date.toISOString().slice(0, 10);
}

/** The Monday at least `weeks` weeks ahead (a plain working week, holidays aside). */
export function mondayAhead(weeks) {
  const d = new Date();
  d.setUTCHours(12, 0, 0, 0);
  d.setUTCDate(d.getUTCDate() + 7 * weeks);
  while (d.getUTCDay() !== 1) d.setUTCDate(d.getUTCDate() + 1);
  return d;
}

export function addDays(date, n) {
  const d = new Date(date);
  d.setUTCDate(d.getUTCDate() + n);
  return d;
}

async function call(token, method, path, body) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** Signs in through the API; returns a bearer token. */
export async function apiLogin(person) {
  const res = await fetch(`${BASE}/api/v1/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ person, password: PASSWORD }),
  });
  if (!res.ok) throw new Error(`login ${person}: ${res.status} ${await res.text()}`);
  return (await res.json()).token;
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** The JWS (JAdES baseline-B, detached payload) a client makes over a canonical payload. */
function jws(person, canonical, x5c) {
  const key = createPrivateKey(readFileSync(keyFile(person)));
  const kind = key.asymmetricKeyType;
  const alg = kind === "ec" ? "ES256" : kind === "ed25519" ? "EdDSA" : "PS256";
  const leaf = Buffer.from(x5c[0], "base64");
  const header = { alg, iat: Math.floor(Date.now() / 1000), x5c, "x5t#S256": b64url(createHash("sha256").update(leaf).digest()) };
  const protectedB64 = b64url(JSON.stringify(header));
  const input = Buffer.from(`${protectedB64}.${b64url(canonical)}`);
  const signature =
    kind === "ec" ? nodeSign("sha256", input, { key, dsaEncoding: "ieee-p1363" })
      : kind === "ed25519" ? nodeSign(null, input, key)
        : nodeSign("sha256", input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  return { protected: protectedB64, signature: b64url(signature) };
}

/** Submits a form through the API, signed with the person's demo key; returns the case id. */
export async function submitSigned(person, form, data) {
  const token = await apiLogin(person);
  const idempotency_key = randomUUID();
  const p = await call(token, "POST", "/api/v1/signing-payload", { kind: "submit", form, data, idempotency_key });
  if (p.status !== 200) throw new Error(`signing payload: ${p.status} ${JSON.stringify(p.json)}`);
  const cert = await call(token, "GET", "/api/v1/me/certificate");
  const signed = { payload: p.json.payload, signature: jws(person, p.json.canonical, cert.json.x5c) };
  const res = await call(token, "POST", "/api/v1/cases", { form, data, idempotency_key, signed });
  if (res.status !== 201) throw new Error(`submit: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.case.id;
}

/**
 * Submits a signed annual-leave request for `days` working days (Monday on) in the first week,
 * from `weeksAhead` on, that the holiday calendar leaves whole; returns the case id.
 */
export async function submitLeave(person, weeksAhead, days = 2) {
  for (let w = weeksAhead; w < weeksAhead + 8; w++) {
    const monday = mondayAhead(w);
    const data = { leave_type: "annual", start_date: isoDate(monday), end_date: isoDate(addDays(monday, days - 1)) };
    try {
      return await submitSigned(person, "absence-and-annual-leave", data);
    } catch (e) {
      if (!/period-has-working-days/.test(String(e))) throw e;
    }
  }
  throw new Error("no week without holidays found");
}

/** The first Monday from `weeksAhead` on whose `days` working days hold no holiday for the form. */
export async function wholeWeek(person, weeksAhead, days) {
  const token = await apiLogin(person);
  for (let w = weeksAhead; w < weeksAhead + 8; w++) {
    const monday = mondayAhead(w);
    const data = { leave_type: "annual", start_date: isoDate(monday), end_date: isoDate(addDays(monday, days - 1)) };
    const res = await call(token, "POST", "/api/v1/forms/absence-and-annual-leave/validate", { data });
    if (res.json && res.json.valid && res.json.computed.working_days === days) return monday;
  }
  throw new Error("no week without holidays found");
}

/** Acts on an open step through the API, signed with the person's demo key unless `simple`. */
export async function actSigned(person, caseId, step, action, simple = false, comment = undefined) {
  const token = await apiLogin(person);
  let signed;
  if (!simple) {
    const p = await call(token, "POST", "/api/v1/signing-payload", { kind: "act", case: caseId, step, action });
    if (p.status !== 200) throw new Error(`signing payload: ${p.status} ${JSON.stringify(p.json)}`);
    const cert = await call(token, "GET", "/api/v1/me/certificate");
    signed = { payload: p.json.payload, signature: jws(person, p.json.canonical, cert.json.x5c) };
  }
  const res = await call(token, "POST", `/api/v1/cases/${caseId}/acts`, { step, action, signed, comment });
  if (res.status !== 200) throw new Error(`act: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.case;
}

/** One JSON API call as `person` (signed in through the API); returns {status, json}. */
export async function apiAs(person, method, path, body) {
  return call(await apiLogin(person), method, path, body);
}

/** The RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32 secret at `time` (ms), as an app shows it. */
export function totpCode(secretBase32, time = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secretBase32.replace(/[\s=]/g, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(time / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

export { randomUUID };
