// An auditor looks up any case by id and reads it with its event hash chain re-checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, shot, login, submitLeave, BASE } from "./helpers.mjs";

test("auditor reads a case they are not party to, with every event's hash checked", async () => {
  const id = await submitLeave("p007", 9, 3);
  const { page, problems, close } = await browser();
  try {
    await login(page, "p022", "en");
    await page.goto(`${BASE}/audit`);
    assert.match(await page.textContent("p.note"), /carimbo verify/);
    await page.fill("input[name=case]", id);
    await page.click("#audit-lookup button");
    await page.locator("#chain").waitFor();
    assert.match(await page.textContent("#chain"), /chain is intact/);
    const rows = await page.locator("table.events tbody tr").count();
    assert.ok(rows >= 2, `events listed: ${rows}`);
    assert.equal(await page.locator("table.events tbody td span.error").count(), 0);
    await shot(page, "e1-audit-case");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
