// The administrator's outbox page: a decision made through the API cannot reach the payroll
// endpoint (nobody listens on its port, one attempt), so it is listed as a dead letter with its
// error; the administrator ticks it and sends it again, and the export form is there.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, browser, login, shot, submitLeave, actSigned } from "./helpers.mjs";

test("administrator sees a dead letter with its error and sends it again", async () => {
  const id = await submitLeave("p008", 11, 2);
  await actSigned("p003", id, "supervisor", "approve");
  const { page, problems, close } = await browser();
  try {
    await login(page, "p032", "en");
    await page.click("nav >> text=Outbox");
    await page.waitForURL(/\/admin\/outbox$/);
    // The dispatcher tries once a second: wait for the approval's dead letter.
    const row = page.locator("table.dead tbody tr", { hasText: id });
    for (let i = 0; i < 40 && (await row.count()) === 0; i++) {
      await page.waitForTimeout(250);
      await page.reload();
    }
    assert.equal(await row.count(), 1, "the approval is a dead letter");
    assert.match(await row.textContent(), /decision/);
    assert.match(await row.textContent(), /payroll: 1 attempts/);
    assert.match(await page.textContent("table.endpoints"), /payroll/);
    assert.doesNotMatch(await page.content(), /browser-test-secret/, "the secret is never shown");
    await shot(page, "o1-outbox-dead-letters");

    // Only this case's letters stay ticked; send them again.
    const boxes = page.locator("table.dead tbody input[type=checkbox]");
    for (let i = 0; i < (await boxes.count()); i++) {
      const box = boxes.nth(i);
      if (!(await box.getAttribute("value")).startsWith(id)) await box.uncheck();
    }
    await Promise.all([page.waitForURL(/\/admin\/outbox$/), page.click("text=Send the selected again")]);
    // Back to pending with a fresh attempt; the endpoint is still down, so it returns here.
    for (let i = 0; i < 40 && (await row.count()) === 0; i++) {
      await page.waitForTimeout(250);
      await page.reload();
    }
    assert.equal(await row.count(), 1, "after its new attempt it is a dead letter again");
    assert.ok(await page.locator("form#export input[name=since]").isVisible());
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("staff cannot open the outbox page", async () => {
  const { page, close } = await browser();
  try {
    await login(page, "p005", "en");
    assert.equal(await page.locator("nav >> text=Outbox").count(), 0, "no link for staff");
    const res = await page.goto(`${BASE}/admin/outbox`);
    assert.equal(res.status(), 403);
  } finally {
    await close();
  }
});
