// (d) The language switch keeps the page, and what was typed in it, and changes every label:
// pt, en and zh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, shot, login, BASE } from "./helpers.mjs";

test("switching language keeps the page and shows the form's pt, en and zh labels", async () => {
  const { page, problems, close } = await browser();
  try {
    await login(page, "p005", "pt");
    await page.goto(`${BASE}/forms/absence-and-annual-leave`);
    const label = (id) => page.textContent(`label[for="${id}"]`);
    const check = async (lang, title, start, nav, group) => {
      assert.equal(new URL(page.url()).pathname, "/forms/absence-and-annual-leave", "the page stays");
      assert.equal(await page.getAttribute("html", "lang"), lang);
      assert.equal((await page.textContent("h1")).trim(), title);
      assert.match(await label("f-start_date"), new RegExp(start));
      assert.match(await page.textContent("header nav"), new RegExp(nav));
      assert.match(await page.textContent("fieldset.group legend"), new RegExp(group));
    };
    await check("pt-PT", "Boletim de faltas e férias", "Data de início", "Os meus processos", "Ausência");
    assert.ok((await page.locator("#f-leave_type option").allTextContents()).includes("Férias"));
    await page.selectOption("#f-leave_type", "sick");
    await page.fill("#f-substitute", "Wong Wai Keong");
    await shot(page, "d1-pt");

    await page.click('nav.lang [lang="en"]');
    await page.waitForURL(/lang=en/);
    await check("en", "Absence and annual-leave application", "Start date", "My cases", "Leave");
    assert.ok((await page.locator("#f-leave_type option").allTextContents()).includes("Annual leave"));
    assert.equal((await page.locator("#f-leave_type option:checked").textContent()).trim(), "Sick leave", "the choice survives the switch");
    assert.equal(await page.inputValue("#f-substitute"), "Wong Wai Keong");
    assert.equal(await page.locator(".field-error").count(), 0, "switching language is not a submission");
    await shot(page, "d2-en");

    await page.click('nav.lang [lang="zh-Hant"]');
    await page.waitForURL(/lang=zh/);
    await check("zh-Hant-MO", "缺勤與年假申請書", "開始日期", "我的個案", "假期");
    assert.equal((await page.locator("#f-leave_type option:checked").textContent()).trim(), "病假");
    await shot(page, "d3-zh");

    // The choice is remembered on the next page.
    await page.goto(`${BASE}/cases`);
    assert.equal((await page.textContent("h1")).trim(), "我的個案");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
