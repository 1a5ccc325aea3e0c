// (c) A form author uploads a broken definition and sees every problem with its file and JSON
// pointer (forms/… for a form: a form and its workflow share a file name); a sound one is
// previewed with the renderer the fill page uses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { browser, shot, login, REPO, BASE } from "./helpers.mjs";

test("author uploads a broken definition, sees each error with file and pointer, then previews a sound one", async () => {
  const leave = JSON.parse(readFileSync(join(REPO, "forms", "absence-and-annual-leave.json"), "utf8"));
  const broken = structuredClone(leave);
  broken.id = "holiday-request";
  delete broken.labels.start_date.pt;
  broken.layout.widgets.reason = "slider";
  broken.layout.groups[0].fields.push("no_such_field");

  const { page, problems, close } = await browser();
  try {
    await login(page, "p019", "en");
    await page.goto(`${BASE}/author`);
    await page.setInputFiles("#files", [{ name: "holiday-request.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(broken, null, 2)) }]);
    await page.click("#author button[type=submit]");
    const list = page.locator("#problems li");
    await list.first().waitFor();
    const lines = await list.allTextContents();
    const has = (re) => assert.ok(lines.some((l) => re.test(l)), `expected ${re} in:\n${lines.join("\n")}`);
    has(/^A text is missing in zh, pt or en.*forms\/holiday-request\.json:\/labels\/start_date: missing the Portuguese text/);
    has(/^Layout problem: .*forms\/holiday-request\.json:\/layout\/widgets\/reason: unknown widget/);
    has(/^Layout problem: .*forms\/holiday-request\.json:\/layout\/groups\/0\/fields\/3: "no_such_field"/);
    await shot(page, "c1-broken-definition");

    await page.setInputFiles("#files", [{ name: "absence-and-annual-leave.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(leave)) }]);
    await page.click("#author button[type=submit]");
    await page.locator("section.preview").waitFor();
    assert.match(await page.textContent("#outcome h2"), /No problems/);
    assert.ok(await page.locator("section.preview #f-start_date").count(), "the preview renders the form's fields");
    await shot(page, "c2-sound-definition-preview");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
