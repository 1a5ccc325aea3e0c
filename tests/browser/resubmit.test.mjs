// (r) A supervisor returns a leave request for correction through the API; the member of staff
// reads the comment on the case page, corrects the request in the page (the server first finds
// a mistake beside its field), sees what changed, signs the resubmission with the key file, and
// lands on the case page: open again, with the new data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, browser, shot, login, keyFile, wholeWeek, submitSigned, actSigned, addDays, isoDate } from "./helpers.mjs";

test("staff corrects a returned leave request in the page, signs and resubmits it; the case is open again", async () => {
  const monday = await wholeWeek("p011", 17, 5);
  const id = await submitSigned("p011", "absence-and-annual-leave", { leave_type: "annual", start_date: isoDate(monday), end_date: isoDate(addDays(monday, 1)) });
  const returned = await actSigned("p004", id, "supervisor", "return", false, "Please take Wednesday too, and name who covers for you.");
  assert.equal(returned.status, "returned");

  const { page, problems, close } = await browser();
  try {
    await login(page, "p011", "en");
    await page.goto(`${BASE}/cases/${id}`);
    assert.match(await page.textContent(".status"), /Returned for correction/);
    assert.equal((await page.textContent("#return-comment")).trim(), "Please take Wednesday too, and name who covers for you.");
    assert.match(await page.textContent("#returned"), /Maria de Fátima Rodrigues \(p004\)/);
    await shot(page, "r1-returned-with-comment");

    await Promise.all([page.waitForURL(new RegExp(`/cases/${id}/resubmit$`)), page.click("#correct")]);
    assert.equal(await page.inputValue("#f-start_date"), isoDate(monday), "pre-filled with the case's data");
    assert.equal(await page.inputValue("#f-end_date"), isoDate(addDays(monday, 1)));
    assert.equal(await page.textContent("#f-working_days"), "2");

    // A slip first: the server puts the error beside the field and keeps what was typed.
    await page.fill("#f-end_date", isoDate(addDays(monday, -1)));
    await page.fill("#f-substitute", "Ng Chon Kit");
    await page.click("button[name=_do][value=check]");
    const endError = page.locator(".field:has(#f-end_date) .field-error");
    await endError.waitFor();
    assert.match(await endError.textContent(), /end date cannot be before the start date/i);
    assert.equal(await page.inputValue("#f-substitute"), "Ng Chon Kit", "nothing typed is lost");
    assert.equal(await page.locator("#sign").count(), 0);
    await shot(page, "r2-correction-error");

    await page.fill("#f-end_date", isoDate(addDays(monday, 2)));
    await page.click("button[name=_do][value=check]");
    await page.locator("#sign").waitFor();
    const changed = async (pointer) => [
      (await page.textContent(`#changes tr[data-pointer="${pointer}"] td.before`)).trim(),
      (await page.textContent(`#changes tr[data-pointer="${pointer}"] td.after`)).trim(),
    ];
    assert.deepEqual(await changed("/end_date"), [isoDate(addDays(monday, 1)), isoDate(addDays(monday, 2))]);
    assert.deepEqual(await changed("/working_days"), ["2", "3"], "the computed days follow");
    assert.deepEqual(await changed("/substitute"), ["—", "Ng Chon Kit"]);
    assert.equal(await page.locator("#changes tbody tr").count(), 3, "nothing else changed");
    await page.setInputFiles("#keyfile", keyFile("p011"));
    await shot(page, "r3-what-changed-ready-to-sign");

    await Promise.all([page.waitForURL(new RegExp(`/cases/${id}$`), { timeout: 15000 }), page.click("#sign-submit")]);
    assert.match(await page.textContent(".status"), /In progress/);
    const supervisor = page.locator('li.step[data-step="supervisor"]');
    assert.match(await supervisor.getAttribute("class"), /open/);
    assert.match(await supervisor.textContent(), /Waiting for Maria de Fátima Rodrigues \(p004\)/);
    assert.match(await page.textContent("#last-correction"), /data version 2/);
    assert.equal(await page.locator("#returned").count(), 0, "the correction is done");
    assert.match(await page.locator("fieldset.group", { hasText: "Cover" }).textContent(), /Ng Chon Kit/, "the case shows the new data");
    assert.match(await page.locator("fieldset.group", { hasText: "Period" }).textContent(), new RegExp(isoDate(addDays(monday, 2))));
    await shot(page, "r4-open-again");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
