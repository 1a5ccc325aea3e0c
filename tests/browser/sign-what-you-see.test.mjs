// (m) A signer signs exactly what is on the screen, with their own key: after "Check", a change
// to the form stops signing until it is checked again; the sign step lists what will be signed;
// choosing the certificate instead of the key, or a colleague's key, is refused in words the
// person can act on; the case is then submitted with the data last checked and shown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { BASE, REPO, browser, shot, login, keyFile, wholeWeek, addDays, isoDate, apiAs } from "./helpers.mjs";

test("a change after Check stops signing, the summary shows what is signed, and only the signer's own key signs", async () => {
  const { page, problems, close } = await browser();
  try {
    await login(page, "p005", "en");
    await page.goto(`${BASE}/forms/absence-and-annual-leave`);
    const monday = await wholeWeek("p005", 4, 5);
    await page.selectOption("#f-leave_type", "annual");
    await page.fill("#f-start_date", isoDate(monday));
    await page.fill("#f-end_date", isoDate(addDays(monday, 1)));
    await page.click("button[name=_do][value=check]");
    await page.locator("#sign").waitFor();
    const summary = page.locator("#signing-summary");
    assert.match(await summary.textContent(), /You are signing/);
    assert.equal((await summary.locator('dd[data-pointer="/end_date"]').textContent()).trim(), isoDate(addDays(monday, 1)));

    // An edit after the check: the sign button is disabled and the page says why.
    await page.fill("#f-end_date", isoDate(addDays(monday, 3)));
    await page.fill("#f-reason", "family matters");
    assert.equal(await page.isDisabled("#sign-submit"), true, "no signing of data that is not what was checked");
    assert.match(await page.textContent("#sign-result"), /changed the form after it was checked/);
    await shot(page, "m1-changed-after-check");

    // Checked again: the summary now shows the new end date, and that is what gets signed.
    await page.click("button[name=_do][value=check]");
    await page.locator("#sign").waitFor();
    assert.equal((await page.locator('#signing-summary dd[data-pointer="/end_date"]').textContent()).trim(), isoDate(addDays(monday, 3)));
    assert.equal((await page.locator('#signing-summary dd[data-pointer="/working_days"]').textContent()).trim(), "4", "computed values are signed and shown too");
    assert.match(await page.textContent("#keyfile-hint"), /p005\.key\.pem/);

    // The certificate instead of the key.
    await page.setInputFiles("#keyfile", join(REPO, "seeds", "pki", "people", "p005.pem"));
    await page.click("#sign-submit");
    await page.locator("#sign-result .error").waitFor();
    assert.match(await page.textContent("#sign-result"), /certificate, not your key: choose your key file p005\.key\.pem/);
    // A colleague's key.
    await page.setInputFiles("#keyfile", keyFile("p003"));
    await page.click("#sign-submit");
    await page.waitForFunction(() => /not yours/.test(document.querySelector("#sign-result").textContent));
    assert.match(await page.textContent("#sign-result"), /This key is not yours: it does not match your certificate\. Choose p005\.key\.pem/);
    await shot(page, "m2-not-your-key");

    await page.setInputFiles("#keyfile", keyFile("p005"));
    await page.click("#sign-submit");
    const link = page.locator("#new-case");
    await link.waitFor({ timeout: 15000 });
    const caseId = (await link.textContent()).trim();
    const stored = await apiAs("p005", "GET", `/api/v1/cases/${caseId}`);
    assert.equal(stored.json.case.data.end_date, isoDate(addDays(monday, 3)), "the case holds the data shown when signing");
    assert.equal(stored.json.case.data.reason, "family matters");
    await shot(page, "m3-signed-what-was-shown");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
