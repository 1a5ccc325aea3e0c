// An administrator reads the usage figures: the totals, the server-drawn SVG chart (no script,
// no CDN), the table behind it, and the filters; then the same page in Chinese.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, shot, login, submitLeave, actSigned, BASE } from "./helpers.mjs";

test("administrator reads usage figures with a chart, filters them by department, and reads them in Chinese", async () => {
  // A few cases first: the figures are recomputed at most once a minute, from the first visit on.
  const approved = await submitLeave("p008", 11, 1);
  await actSigned("p003", approved, "supervisor", "approve");
  await actSigned("p018", approved, "hr-records", "sign", true);
  const rejected = await submitLeave("p009", 11, 2);
  await actSigned("p003", rejected, "supervisor", "reject");
  const returned = await submitLeave("p024", 11, 3);
  await actSigned("p017", returned, "supervisor", "return");
  await submitLeave("p025", 11, 1);

  const { page, problems, close } = await browser();
  try {
    await login(page, "p032", "en");
    await Promise.all([page.waitForURL(/\/admin\/usage$/), page.click("nav a[href='/admin/usage']")]);
    assert.equal(await page.textContent("h1"), "Usage figures");
    const submitted = Number(await page.textContent("#usage-totals dd[data-figure=submitted]"));
    assert.ok(submitted >= 4, `submitted: ${submitted}`);
    assert.ok(Number(await page.textContent("#usage-totals dd[data-figure=completed]")) >= 1);
    assert.ok(Number(await page.textContent("#usage-totals dd[data-figure=rejected]")) >= 1);
    assert.ok(Number(await page.textContent("#usage-totals dd[data-figure=returned]")) >= 1);
    // The chart: an accessible inline SVG with bars that have a size.
    const chart = page.locator("svg#usage-chart");
    assert.equal(await chart.getAttribute("role"), "img");
    assert.match(await page.textContent("#usage-chart-title"), /submitted, completed, rejected/);
    const bars = await chart.locator("rect").count();
    assert.ok(bars >= 5, `bars: ${bars}`);
    const box = await chart.boundingBox();
    assert.ok(box && box.width > 300 && box.height > 100, `the chart is drawn: ${JSON.stringify(box)}`);
    const fill = await chart.locator("rect.s-completed").first().evaluate((r) => getComputedStyle(r).fill);
    assert.equal(fill, "rgb(0, 158, 115)", "bar colours come from app.css");
    assert.ok((await page.locator("#usage-rows tbody tr").count()) >= 2, "a DAF row and a DRH row at least");
    await shot(page, "u1-usage-figures");

    // Filter by department with the form's controls.
    await page.selectOption("#usage-filter select[name=department]", "DRH");
    await Promise.all([page.waitForURL(/department=DRH/), page.click("#usage-filter button[type=submit]")]);
    const departments = await page.locator("#usage-rows tbody tr td:nth-child(2)").allTextContents();
    assert.ok(departments.length >= 1 && departments.every((d) => d === "DRH"), `only DRH rows: ${departments}`);

    await page.goto(`${BASE}/admin/usage?lang=zh`);
    assert.equal(await page.textContent("h1"), "使用統計");
    await shot(page, "u2-usage-figures-zh");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
