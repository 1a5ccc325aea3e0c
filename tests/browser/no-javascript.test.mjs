// The pages read and work without JavaScript, except for signing with a key: a form is checked
// by the server, and steps that need only a simple signature are recorded from the inbox by a
// plain form post (the server seals them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, shot, login, submitLeave, actSigned, BASE } from "./helpers.mjs";

test("without JavaScript a form is still checked by the server and HR records a simple step from the inbox", async () => {
  const id = await submitLeave("p006", 11);
  const after = await actSigned("p003", id, "supervisor", "approve");
  assert.equal(after.steps["hr-records"].status, "open", "two days skip the head: HR records next");

  const { page, problems, close } = await browser({ javaScriptEnabled: false });
  try {
    await login(page, "p018", "en");
    await page.goto(`${BASE}/forms/absence-and-annual-leave`);
    await page.click("button[name=_do][value=check]");
    assert.match(await page.textContent(".field:has(#f-leave_type) .field-error"), /required/);
    await shot(page, "f1-no-js-form-checked");

    await page.goto(`${BASE}/inbox?all=1`);
    const row = page.locator(`tr.item[data-case="${id}"]`);
    assert.ok(await row.locator("input.pick").isChecked(), "the select-all link ticks every row");
    for (const other of await page.locator("tr.item").all()) {
      if ((await other.getAttribute("data-case")) !== id) await other.locator("input.pick").uncheck();
    }
    await page.click("#batch-go");
    await page.locator("ul.results").waitFor();
    assert.match(await page.textContent("ul.results"), new RegExp(`${id}: done`));
    await shot(page, "f2-no-js-inbox-recorded");

    await page.goto(`${BASE}/cases/${id}`);
    assert.match(await page.textContent(".status"), /Completed/);
    assert.match(await page.locator('li.step[data-step="hr-records"]').textContent(), /Tam Wai I \(p018\) signed .* simple signature/);
    assert.match(await page.locator('li.step[data-step="head"]').getAttribute("class"), /skipped/);
    await shot(page, "f3-no-js-case-completed");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
