// (o) Evidence from the page: the staff member downloads the case's evidence bundle from the
// case page; an auditor uploads it on the verification page, which checks it in the server
// (nothing kept) and shows the report in Portuguese with the data that was signed; a changed
// bundle fails and says where; the auditor finds the case by form, person and period.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { browser, shot, login, submitLeave, actSigned, BASE } from "./helpers.mjs";

test("a downloaded evidence bundle verifies on the auditor's page, which shows what was signed", async () => {
  const id = await submitLeave("p008", 26, 2);
  await actSigned("p003", id, "supervisor", "approve", false, "Boas férias");
  const dir = mkdtempSync(join(tmpdir(), "carimbo-bundle-"));
  const staff = await browser();
  let file;
  try {
    await login(staff.page, "p008", "en");
    await staff.page.goto(`${BASE}/cases/${id}`);
    await shot(staff.page, "o1-case-page-with-download");
    const [download] = await Promise.all([staff.page.waitForEvent("download"), staff.page.click("#download-evidence")]);
    assert.equal(download.suggestedFilename(), `evidence-${id}.json`);
    file = join(dir, download.suggestedFilename());
    await download.saveAs(file);
    assert.equal(JSON.parse(readFileSync(file, "utf8")).case_id, id);
    assert.deepEqual(staff.problems, []);
  } finally {
    await staff.close();
  }

  const { page, problems, close } = await browser();
  try {
    await login(page, "p022", "pt");
    await page.goto(`${BASE}/audit/verify`);
    await page.setInputFiles("#bundle-file", file);
    await Promise.all([page.waitForURL(/\/audit\/verify/), page.click("#verify-go")]);
    await page.locator("#verify-report").waitFor();
    assert.equal(await page.getAttribute("#verify-report", "data-passed"), "true");
    assert.match(await page.textContent("#verify-passed"), /Verificação aprovada/);
    const signed = await page.textContent("#what-was-signed");
    assert.match(signed, /O que foi assinado/);
    assert.match(signed, /Tipo de ausência\s*Férias/, "the signed data, labelled as the form labels it");
    assert.match(await page.textContent("table.signatures"), /Ho Chi Wai \(p003\)/);
    await shot(page, "o2-bundle-verified-pt");

    // One changed byte of the signed data: the report fails, names the place and links the code.
    const tampered = join(dir, "tampered.json");
    writeFileSync(tampered, readFileSync(file, "utf8").replace('"leave_type":"annual"', '"leave_type":"sick"'));
    await page.setInputFiles("#bundle-file", tampered);
    await Promise.all([page.waitForURL(/\/audit\/verify/), page.click("#verify-go")]);
    assert.equal(await page.getAttribute("#verify-report", "data-passed"), "false");
    assert.match(await page.textContent("#verify-failure"), /Verificação falhada/);
    assert.ok(await page.locator('#verify-failure a.code[href^="/docs/errors#carimbo-e09"]').count(), "the code links to its explanation");
    assert.equal(await page.locator("#what-was-signed").count(), 0, "nothing is shown as signed from a bundle that failed");
    await shot(page, "o3-tampered-bundle-fails");

    // The case found by form, person and the day it was submitted.
    await page.goto(`${BASE}/audit`);
    await page.selectOption('#audit-search select[name="form"]', "absence-and-annual-leave");
    await page.fill('#audit-search input[name="person"]', "p008");
    await page.click('#audit-search button[type="submit"]');
    await page.locator(`#search-results tr[data-case="${id}"]`).waitFor();
    await shot(page, "o4-auditor-search");
    await page.click(`#search-results tr[data-case="${id}"] a`);
    await page.locator("#chain.ok").waitFor();
    assert.deepEqual(problems, []);
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});
