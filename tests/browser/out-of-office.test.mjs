// (p) Out of office, by the person: a supervisor names who acts for them, from when to when and
// on which forms; a wrong entry is refused beside what was typed; the administrator sees the
// delegation with who set it and ends it; the supervisor's page then lists it no more.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, shot, login, isoDate, addDays, BASE } from "./helpers.mjs";

test("a supervisor sets their own delegation and the administrator sees and ends it", async () => {
  const from = addDays(new Date(), 40);
  const to = addDays(from, 4);
  let id;
  {
    const { page, problems, close } = await browser();
    try {
      await login(page, "p017", "en");
      await page.goto(`${BASE}/me/delegation`);
      await page.selectOption("#d-delegate", "p016");
      await page.fill("#d-from", isoDate(to));
      await page.fill("#d-to", isoDate(from));
      await page.check('input[name="forms"][value="absence-and-annual-leave"]');
      await page.click("#delegation-set");
      assert.match(await page.textContent("#delegation-refused"), /The last day cannot be before the first\. CARIMBO-E0723/);
      assert.equal(await page.inputValue("#d-from"), isoDate(to), "what was typed is kept");
      assert.equal(await page.isChecked('input[name="forms"][value="absence-and-annual-leave"]'), true);
      await shot(page, "p1-delegation-refused");

      await page.fill("#d-from", isoDate(from));
      await page.fill("#d-to", isoDate(to));
      await page.fill("#d-reason", "Annual leave");
      await page.click("#delegation-set");
      assert.match(await page.textContent("#delegation-done"), /The delegation is set and recorded\./);
      const row = page.locator("tr[data-delegation]").first();
      id = await row.getAttribute("data-delegation");
      assert.match(await row.textContent(), /Tang Kam Fai \(p016\).*upcoming.*Absence and annual-leave application/s);
      await shot(page, "p2-delegation-set");
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  }
  {
    const { page, problems, close } = await browser();
    try {
      await login(page, "p032", "pt");
      await page.goto(`${BASE}/admin/delegations`);
      const row = page.locator(`tr[data-delegation="${id}"]`);
      assert.match(await row.textContent(), /Kou Lai Kun \(p017\).*Tang Kam Fai \(p016\)/s, "for whom and who acts");
      assert.match(await row.textContent(), /futura/);
      await shot(page, "p3-administrator-sees-it");
      await row.locator('button[value="end"]').click();
      assert.match(await page.textContent("#delegation-done"), /A substituição terminou\./);
      assert.equal(await page.locator(`tr[data-delegation="${id}"]`).count(), 0);
      await shot(page, "p4-administrator-ended-it");
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  }
  const { page, close } = await browser();
  try {
    await login(page, "p017", "en");
    await page.goto(`${BASE}/me/delegation`);
    assert.equal(await page.locator(`tr[data-delegation="${id}"]`).count(), 0, "the person's page lists it no more");
  } finally {
    await close();
  }
});
