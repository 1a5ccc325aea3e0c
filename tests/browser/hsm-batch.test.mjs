// (h) Keys that cannot be copied, in the page, on a server whose demo token is in SoftHSM2 and
// whose device rule is enforced: a supervisor enrols a second factor, selects 20 leave
// requests, reads what each says in the confirmation list, authorizes them with one code and
// gets 20 results, each act signed on the HSM and `qualified`; one case's evidence bundle
// verifies offline with `carimbo verify`. A member of staff then submits a leave request from
// the fill page with their code instead of a key file. Runs only against that server
// (CARIMBO_HSM=1, set by tests/browser.rs when SoftHSM2 is installed); skipped otherwise.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BASE, browser, shot, login, submitLeave, totpCode, apiAs, accessible, wholeWeek, isoDate, addDays } from "./helpers.mjs";

const ON = process.env.CARIMBO_HSM === "1";
const why = "needs the HSM server of tests/browser.rs (SoftHSM2 installed)";

/** Enrols the signed-in person's second factor on /me/security; returns the secret. */
async function enrol(page) {
  await page.goto(`${BASE}/me/security`);
  await page.click("#totp-begin");
  const secret = await page.getAttribute("#totp-secret", "data-secret");
  await page.fill("#totp-code", totpCode(secret));
  await Promise.all([page.waitForURL(/enrolled=1/), page.click("#totp-confirm")]);
  return secret;
}

/** The code of the next 30-second step (the current one was spent enrolling), which the server accepts. */
const nextCode = (secret) => totpCode(secret, Date.now() + 30000);

test("a supervisor approves 20 cases on the HSM with one code; each act is qualified and verifies offline", { skip: !ON && why }, async () => {
  const ours = [];
  for (let i = 0; i < 20; i++) ours.push(await submitLeave("p005", 2 + i, 1));
  const { page, problems, close } = await browser();
  try {
    await login(page, "p003", "en");
    const secret = await enrol(page);
    await page.goto(`${BASE}/inbox`);
    for (const id of ours) await page.locator(`tr.item[data-case="${id}"]`).waitFor();
    assert.equal(await page.getAttribute("#batch", "data-provider"), "hsm");
    assert.equal(await page.locator("#keyfile").count(), 0, "no key file to pick: the key is on the HSM");
    assert.match(await page.textContent("#hsm-note"), /Your key is on the HSM and cannot be copied/);
    await page.check("#select-all");
    for (const row of await page.locator("tr.item").all()) {
      if (!ours.includes(await row.getAttribute("data-case"))) await row.locator("input.pick").uncheck();
    }
    await page.fill("#totp", nextCode(secret));
    await shot(page, "h1-inbox-hsm-selected");
    await accessible(page, "inbox on the HSM");

    await page.click("#batch-go");
    await page.locator("#confirm").waitFor({ state: "visible" });
    assert.match(await page.textContent("#confirm-text"), /Approve · 20 case\(s\) · signed with your key on the HSM/);
    const listed = await page.locator("#confirm-list li").evaluateAll((lis) => lis.map((li) => [li.dataset.case, li.textContent]));
    assert.deepEqual(listed.map(([id]) => id).sort(), [...ours].sort(), "the confirmation lists exactly the 20 cases");
    for (const [, text] of listed) assert.match(text, /Absence and annual-leave application/, "each item says what it is");
    await shot(page, "h2-confirm-twenty");
    await page.click("#confirm-yes");
    for (const id of ours) {
      await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.result, `tr.item[data-case="${id}"]`, { timeout: 60000 });
      assert.equal(await page.getAttribute(`tr.item[data-case="${id}"]`, "data-result"), "ok", await page.textContent(`tr.item[data-case="${id}"]`));
    }
    assert.match(await page.textContent("#batch-result"), /20 succeeded, 0 failed/);
    await shot(page, "h3-twenty-on-the-hsm");

    // One case's bundle, checked offline by the command an auditor runs.
    const bundle = await apiAs("p003", "GET", `/api/v1/cases/${ours[7]}/evidence`);
    assert.equal(bundle.status, 200);
    const dir = mkdtempSync(join(tmpdir(), "carimbo-hsm-bundle-"));
    try {
      const file = join(dir, "case.json");
      writeFileSync(file, JSON.stringify(bundle.json));
      const report = JSON.parse(execFileSync(process.env.CARIMBO_BIN, ["verify", "--json", file], { encoding: "utf8" }));
      assert.equal(report.passed, true, JSON.stringify(report));
      const line = report.signatures.find((s) => s.step === "supervisor");
      assert.equal(line.provider, "hsm");
      assert.equal(line.achieved, "qualified");
      assert.ok(line.authorization, "the authorization is in the record");
      assert.ok(report.notes.some((n) => n.startsWith("device rule: enforced")), JSON.stringify(report.notes));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("staff submit a leave request from the fill page with their code instead of a key file", { skip: !ON && why }, async () => {
  const { page, problems, close } = await browser();
  try {
    await login(page, "p006", "en");
    const secret = await enrol(page);
    await page.goto(`${BASE}/forms/absence-and-annual-leave`);
    const monday = await wholeWeek("p006", 30, 2);
    await page.selectOption("#f-leave_type", "annual");
    await page.fill("#f-start_date", isoDate(monday));
    await page.fill("#f-end_date", isoDate(addDays(monday, 1)));
    await page.click("button[name=_do][value=check]");
    await page.locator("#sign").waitFor();
    assert.equal(await page.getAttribute("#sign", "data-provider"), "hsm");
    assert.equal(await page.locator("#keyfile").count(), 0);
    assert.match(await page.textContent("#hsm-note"), /The code authorizes only the signature of what is shown above, once\./);
    await page.click("#sign-submit");
    assert.match(await page.locator("#sign-result .error").textContent(), /Enter your code/, "no code, nothing sent");
    await page.fill("#totp", nextCode(secret));
    await shot(page, "h4-fill-with-code");
    await accessible(page, "fill page on the HSM");
    await page.click("#sign-submit");
    const link = page.locator("#new-case");
    await link.waitFor({ timeout: 20000 });
    const id = (await link.textContent()).trim();
    const bundle = await apiAs("p006", "GET", `/api/v1/cases/${id}/evidence`);
    assert.equal(bundle.status, 200);
    assert.match(JSON.stringify(bundle.json), /"provider":"hsm"/, "the submission is recorded as made on the HSM");
    await shot(page, "h5-submitted-on-the-hsm");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
