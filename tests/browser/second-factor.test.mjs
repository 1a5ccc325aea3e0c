// (s) A person enrols a TOTP second factor from the page linked in the header: the QR code and
// the secret are shown, a wrong code is refused with nothing changed, and the code an
// authenticator app would show (computed here from the secret on the page) enrols it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, browser, shot, login, totpCode, apiAs } from "./helpers.mjs";

test("a person enrols a second factor from the security page; a wrong code is refused", async () => {
  const { page, problems, close } = await browser();
  try {
    await login(page, "p012", "en");
    await Promise.all([page.waitForURL(/\/me\/security$/), page.click('header a[href="/me/security"]')]);
    assert.equal(await page.getAttribute("#second-factor-status", "data-enrolled"), "false");
    assert.match(await page.textContent("#second-factor-status"), /Not enrolled/);
    await shot(page, "s1-security-not-enrolled");

    await page.click("#totp-begin");
    await page.locator("#totp-qr").waitFor();
    assert.ok(await page.evaluate(() => document.getElementById("totp-qr").naturalWidth > 0), "the QR code image loads (data: URL)");
    const secret = await page.getAttribute("#totp-secret", "data-secret");
    assert.match(secret, /^[A-Z2-7]+=*$/);
    assert.equal((await page.textContent("#totp-secret")).replace(/\s/g, ""), secret, "the secret as text, in groups");
    assert.match(await page.textContent("#totp-url"), new RegExp(`^otpauth://totp/carimbo:p012\\?.*secret=${secret}`));
    await shot(page, "s2-enrolment-qr");

    const now = Date.now();
    const valid = [-1, 0, 1].map((k) => totpCode(secret, now + k * 30000));
    const wrong = ["000000", "111111", "222222", "333333"].find((c) => !valid.includes(c));
    await page.fill("#totp-code", wrong);
    await page.click("#totp-confirm");
    const error = page.locator("#totp-code-error");
    await error.waitFor();
    assert.match(await error.textContent(), /The second-factor code is wrong or expired\. \(CARIMBO-E0604\)/);
    assert.equal(await page.getAttribute("#totp-code", "aria-invalid"), "true");
    assert.equal(await page.inputValue("#totp-code"), wrong, "the code typed stays");
    assert.equal(await page.getAttribute("#totp-secret", "data-secret"), secret, "the same secret, still pending");
    assert.equal(await page.getAttribute("#second-factor-status", "data-enrolled"), "false", "nothing changed");
    assert.equal((await apiAs("p012", "GET", "/api/v1/me")).json.second_factor, false);
    await shot(page, "s3-wrong-code");

    await page.fill("#totp-code", totpCode(secret));
    await Promise.all([page.waitForURL(/enrolled=1/), page.click("#totp-confirm")]);
    assert.equal(await page.getAttribute("#second-factor-status", "data-enrolled"), "true");
    assert.match(await page.textContent("#enrolled-now"), /Your second factor is set up/);
    assert.equal(await page.locator("#totp-qr").count(), 0);
    assert.equal((await apiAs("p012", "GET", "/api/v1/me")).json.second_factor, true);
    await shot(page, "s4-enrolled");

    await page.click('nav.lang [lang="zh-Hant"]');
    await page.waitForURL(/lang=zh/);
    assert.match(await page.textContent("#second-factor-status"), /已設定/);
    await shot(page, "s5-enrolled-zh");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
