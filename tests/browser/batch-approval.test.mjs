// (b) A supervisor approves three leave requests in one batch: select-all, one confirmation,
// each item signed in the page with the supervisor's key file, three successes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, shot, login, keyFile, submitLeave, BASE } from "./helpers.mjs";

test("supervisor batch-approves three signed leave requests with one confirmation", async () => {
  const ours = [];
  for (let i = 0; i < 3; i++) ours.push(await submitLeave("p005", 5 + 2 * i));
  const { page, problems, close } = await browser();
  try {
    await login(page, "p003", "en");
    await page.goto(`${BASE}/inbox`);
    for (const id of ours) await page.locator(`tr.item[data-case="${id}"]`).waitFor();
    await page.check("#select-all");
    for (const box of await page.locator("input.pick").all()) assert.ok(await box.isChecked(), "select-all ticks every row");
    // Other scenarios may have left cases in this inbox: the batch is exactly our three.
    for (const row of await page.locator("tr.item").all()) {
      if (!ours.includes(await row.getAttribute("data-case"))) await row.locator("input.pick").uncheck();
    }
    await page.setInputFiles("#keyfile", keyFile("p003"));
    await shot(page, "b1-inbox-selected");

    await page.click("#batch-go");
    const confirm = page.locator("#confirm");
    await confirm.waitFor({ state: "visible" });
    assert.match(await page.textContent("#confirm-text"), /Approve · 3 case\(s\) · p003\.key\.pem/);
    await shot(page, "b2-one-confirmation");
    await page.click("#confirm-yes");

    for (const id of ours) {
      const row = page.locator(`tr.item[data-case="${id}"]`);
      await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.result, `tr.item[data-case="${id}"]`, { timeout: 20000 });
      assert.equal(await row.getAttribute("data-result"), "ok", await row.textContent());
    }
    assert.match(await page.textContent("#batch-result"), /3 succeeded, 0 failed/);
    await shot(page, "b3-three-successes");

    await page.goto(`${BASE}/cases/${ours[0]}`);
    assert.match(await page.locator('li.step[data-step="supervisor"]').getAttribute("class"), /done/);
    assert.match(await page.locator('li.step[data-step="supervisor"]').textContent(), /Ho Chi Wai \(p003\) approved/);
    await shot(page, "b4-case-after-approval");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
