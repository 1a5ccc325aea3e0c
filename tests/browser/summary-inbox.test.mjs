// (n) Supervisors see what they approve: after sign-in an approver lands on the inbox, whose link
// counts what waits; each row shows the form's summary fields (type, dates, working days); the
// batch confirmation lists every case it will act on, with its summary. On a 390 px phone the
// case page's heading stays inside the screen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, shot, login, keyFile, submitLeave, BASE } from "./helpers.mjs";

test("an approver lands on the inbox, reads each case's summary and confirms a batch that lists every case", async () => {
  const ours = [await submitLeave("p007", 20, 2), await submitLeave("p007", 22, 3)];
  const { page, problems, close } = await browser();
  try {
    await login(page, "p003", "en");
    assert.equal(new URL(page.url()).pathname, "/inbox", "approvers land on their inbox");
    const count = Number(await page.textContent("#inbox-link .count"));
    assert.ok(count >= 2, `the inbox link counts what waits (${count})`);
    assert.equal(count, await page.locator("tr.item").count(), "the count is the rows");
    assert.match(await page.textContent("#signed-in-as"), /Ho Chi Wai/, "the header names the person");
    for (const id of ours) {
      const row = page.locator(`tr.item[data-case="${id}"]`);
      const summary = await row.locator("dl.summary").textContent();
      assert.match(summary, /Type of leave.*Annual leave/);
      assert.match(summary, /Start date.*\d{4}-\d{2}-\d{2}/);
      assert.match(summary, /Working days/);
    }
    await shot(page, "n1-inbox-with-summaries");

    for (const box of await page.locator("input.pick").all()) await box.uncheck();
    for (const id of ours) await page.locator(`tr.item[data-case="${id}"] input.pick`).check();
    await page.setInputFiles("#keyfile", keyFile("p003"));
    await page.click("#batch-go");
    await page.locator("#confirm").waitFor({ state: "visible" });
    const listed = await page.locator("#confirm-list li").all();
    assert.equal(listed.length, 2, "the confirmation lists each case it acts on");
    for (const [i, id] of ours.entries()) {
      assert.equal(await listed[i].getAttribute("data-case"), id);
      assert.match(await listed[i].textContent(), /Absence and annual-leave application · Au Wai Man \(p007\)/);
      assert.match(await listed[i].textContent(), /Type of leave: Annual leave · Start date: \d{4}-\d{2}-\d{2} · End date: \d{4}-\d{2}-\d{2} · Working days: [23]/);
    }
    await shot(page, "n2-confirmation-lists-every-case");
    await page.click("#confirm-no");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("on a 390 px phone the case heading and the header fit the screen", async () => {
  const id = await submitLeave("p007", 24, 2);
  const { page, problems, close } = await browser({ viewport: { width: 390, height: 844 } });
  try {
    await login(page, "p007", "zh");
    await page.goto(`${BASE}/cases/${id}`);
    const wide = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, h1: document.querySelector("h1").scrollWidth, view: window.innerWidth }));
    assert.ok(wide.h1 <= wide.view && wide.doc <= wide.view, `nothing wider than the phone: ${JSON.stringify(wide)}`);
    await shot(page, "n3-phone-case-page");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
