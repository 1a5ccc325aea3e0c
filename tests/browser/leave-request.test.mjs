// (a) A member of staff fills in a leave request in the page, first meets a server-side error
// beside the end date, corrects it, signs with their key file and submits; the case is then in
// "My cases" with its route.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, browser, shot, login, keyFile, wholeWeek, addDays, isoDate } from "./helpers.mjs";

test("staff fills, corrects, signs and submits a leave request, then finds it in My cases", async () => {
  const { page, problems, close } = await browser();
  try {
    await login(page, "p005", "en");
    await shot(page, "a1-forms-list");
    await page.click("text=Absence and annual-leave application");
    await page.waitForURL(/\/forms\/absence-and-annual-leave$/);

    const monday = await wholeWeek("p005", 3, 5);
    await page.selectOption("#f-leave_type", "annual");
    await page.fill("#f-start_date", isoDate(addDays(monday, 2)));
    await page.fill("#f-end_date", isoDate(monday));
    await page.fill("#f-substitute", "Wong Wai Keong");
    await page.click("button[name=_do][value=check]");

    // The rule's message, rendered by the server beside the end date.
    const endError = page.locator(".field:has(#f-end_date) .field-error");
    await endError.waitFor();
    assert.match(await endError.textContent(), /end date cannot be before the start date/i);
    assert.equal(await page.getAttribute("#f-end_date", "aria-invalid"), "true");
    assert.equal(await page.locator("#sign").count(), 0, "no signing step while the form has errors");
    await shot(page, "a2-end-before-start");

    await page.fill("#f-end_date", isoDate(addDays(monday, 4)));
    await page.click("button[name=_do][value=check]");
    await page.locator("#sign").waitFor();
    const days = Number(await page.textContent("#f-working_days"));
    assert.equal(days, 3, "Wednesday to Friday of a week without holidays, computed by the server");
    await page.setInputFiles("#keyfile", keyFile("p005"));
    await shot(page, "a3-ready-to-sign");

    await page.click("#sign-submit");
    const link = page.locator("#new-case");
    await link.waitFor({ timeout: 15000 });
    const caseId = (await link.textContent()).trim();
    assert.match(caseId, /^C-/);
    await shot(page, "a4-submitted");

    await page.goto(`${BASE}/cases`);
    const row = page.locator(`tr[data-case="${caseId}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /Absence and annual-leave application/);
    assert.match(await row.locator("td.status").textContent(), /In progress/);
    await shot(page, "a5-my-cases");

    await page.click(`a[href="/cases/${caseId}"]`);
    const supervisor = page.locator('li.step[data-step="supervisor"]');
    await supervisor.waitFor();
    assert.match(await supervisor.getAttribute("class"), /open/);
    assert.match(await supervisor.textContent(), /Waiting for Ho Chi Wai \(p003\)/);
    assert.match(await page.locator('li.step[data-step="hr-records"]').getAttribute("class"), /pending/);
    await shot(page, "a6-case-progress");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
