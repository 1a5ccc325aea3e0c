// (q) Every word in Chinese: the page states the other scenarios visit, walked with lang=zh.
// `shot` fails on any English word outside ids, codes and names (and runs axe-core on each
// state), so a Chinese page with an English label, message or script error fails here. The usage
// page is walked in Chinese by usage-figures.test.mjs (visiting it here would compute the
// figures, which are kept for a minute, before that scenario's cases exist).
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BASE, REPO, browser, shot, login, keyFile, wholeWeek, addDays, isoDate, submitLeave, actSigned, apiAs } from "./helpers.mjs";

test("a staff member's pages, the form's checks and the signing script's errors are all in Chinese", async () => {
  const { page, problems, close } = await browser();
  try {
    await page.goto(`${BASE}/login?lang=zh`);
    await shot(page, "q01-login-zh");
    await login(page, "p005", "zh");
    await shot(page, "q02-forms-zh");
    await page.goto(`${BASE}/forms/absence-and-annual-leave`);
    await shot(page, "q03-blank-form-zh");
    await page.click("button[name=_do][value=check]");
    await page.locator(".field-error").first().waitFor();
    await shot(page, "q04-form-errors-zh");
    // The switch to Portuguese and back keeps the errors shown.
    await page.click('nav.lang [lang="pt"]');
    await page.waitForURL(/lang=pt/);
    assert.ok(await page.locator(".field-error").count() > 0, "the errors survive the switch");
    await page.click('nav.lang [lang="zh-Hant"]');
    await page.waitForURL(/lang=zh/);
    assert.ok(await page.locator(".field-error").count() > 0);
    await shot(page, "q05-errors-kept-after-switch-zh");

    const monday = await wholeWeek("p005", 30, 2);
    await page.selectOption("#f-leave_type", "annual");
    await page.fill("#f-start_date", isoDate(monday));
    await page.fill("#f-end_date", isoDate(addDays(monday, 1)));
    await page.click("button[name=_do][value=check]");
    await page.locator("#sign").waitFor();
    await shot(page, "q06-sign-step-zh");
    await page.setInputFiles("#keyfile", join(REPO, "seeds", "pki", "people", "p005.pem"));
    await page.click("#sign-submit");
    await page.locator("#sign-result .error").waitFor();
    await shot(page, "q07-certificate-not-key-zh");
    await page.setInputFiles("#keyfile", keyFile("p003"));
    await page.click("#sign-submit");
    await page.waitForFunction(() => /p005\.key\.pem/.test(document.querySelector("#sign-result").textContent) && document.querySelector("#sign-result .error"));
    await shot(page, "q08-not-your-key-zh");
    await page.setInputFiles("#keyfile", keyFile("p005"));
    await page.click("#sign-submit");
    await page.locator("#new-case").waitFor({ timeout: 15000 });
    await shot(page, "q09-submitted-zh");
    await page.goto(`${BASE}/cases`);
    await shot(page, "q10-my-cases-zh");
    await page.click("table.cases tbody tr a");
    await shot(page, "q11-case-page-zh");
    await page.goto(`${BASE}/me/delegation`);
    await page.click("#delegation-set");
    await page.locator("#delegation-refused").waitFor();
    await shot(page, "q12-delegation-refused-zh");
    await page.goto(`${BASE}/me/security`);
    await shot(page, "q13-security-zh");
    await page.goto(`${BASE}/me/notifications`);
    await shot(page, "q14-notifications-zh");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("an approver's inbox, batch confirmation and a case with a skipped step and a comment are in Chinese", async () => {
  const batch = [await submitLeave("p009", 32, 2), await submitLeave("p009", 34, 2)];
  const decided = await submitLeave("p009", 36, 2);
  await actSigned("p003", decided, "supervisor", "approve", false, "早日康復 ok");
  const { page, problems, close } = await browser();
  try {
    await login(page, "p003", "zh");
    await shot(page, "q20-inbox-zh");
    for (const box of await page.locator("input.pick").all()) await box.uncheck();
    for (const id of batch) await page.locator(`tr.item[data-case="${id}"] input.pick`).check();
    await page.click("#batch-go");
    await page.locator("#batch-result .error").waitFor();
    await shot(page, "q21-batch-needs-key-zh");
    await page.setInputFiles("#keyfile", keyFile("p003"));
    await page.click("#batch-go");
    await page.locator("#confirm").waitFor({ state: "visible" });
    await shot(page, "q22-batch-confirmation-zh");
    await page.click("#confirm-yes");
    for (const id of batch) await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.result, `tr.item[data-case="${id}"]`, { timeout: 20000 });
    await shot(page, "q23-batch-done-zh");
    await page.goto(`${BASE}/cases/${decided}`);
    assert.ok(await page.locator('li.step.skipped[data-step="head"] .skip-condition').count(), "the skipped step says which condition");
    await shot(page, "q24-case-skipped-step-zh");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("the auditor's, administrator's and author's pages and the error codes page are in Chinese", async () => {
  const id = await submitLeave("p010", 38, 2);
  const bundle = await apiAs("p022", "GET", `/api/v1/cases/${id}/evidence`);
  const dir = mkdtempSync(join(tmpdir(), "carimbo-zh-"));
  const file = join(dir, `evidence-${id}.json`);
  writeFileSync(file, JSON.stringify(bundle.json));
  const pages = async (person, list) => {
    const { page, problems, close } = await browser();
    try {
      await login(page, person, "zh");
      for (const [path, name, act] of list) {
        await page.goto(`${BASE}${path}`);
        if (act) await act(page);
        await shot(page, name);
      }
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  };
  try {
    await pages("p022", [
      ["/audit", "q30-audit-zh"],
      [`/audit?form=absence-and-annual-leave&person=p010`, "q31-audit-search-zh"],
      [`/audit?case=${id}`, "q32-audit-case-zh"],
      ["/audit/verify", "q33-verify-zh"],
      ["/audit/verify", "q34-verify-report-zh", async (page) => {
        await page.setInputFiles("#bundle-file", file);
        await Promise.all([page.waitForURL(/\/audit\/verify/), page.click("#verify-go")]);
        await page.locator("#verify-report").waitFor();
      }],
    ]);
    await pages("p032", [
      ["/admin/outbox", "q40-outbox-zh"],
      ["/admin/delegations", "q41-delegations-zh"],
    ]);
    await pages("p031", [["/author", "q50-author-zh"]]);
    await pages("p005", [["/docs/errors", "q60-error-codes-zh"]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
