// (w) A member of staff withdraws a case from its page: a reason, one confirmation, and the case
// shows it withdrawn with the reason. A case that got its final decision meanwhile is refused
// with a clear message on the page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, browser, shot, login, submitLeave, apiAs } from "./helpers.mjs";

test("staff withdraws a case with a reason after a confirmation; a second withdrawal is refused on the page", async () => {
  const id = await submitLeave("p010", 13);
  const late = await submitLeave("p010", 15);
  const { page, problems, close } = await browser();
  try {
    await login(page, "p010", "en");
    await page.goto(`${BASE}/cases/${id}`);
    assert.match(await page.textContent(".status"), /In progress/);
    await page.click("#withdraw summary");
    await page.fill("#withdraw-reason-input", "The trip was cancelled; I will work those days.");
    await shot(page, "w1-withdraw-reason");

    await page.click("#withdraw-ask");
    const confirm = page.locator("#withdraw-confirm");
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /Withdraw this case\?.*cannot be undone/s);
    assert.match(await page.textContent("#confirm-reason"), /The trip was cancelled/);
    assert.match(await page.textContent(".status"), /In progress/, "asking is not withdrawing yet");
    await shot(page, "w2-withdraw-confirm");

    await Promise.all([page.waitForURL(new RegExp(`/cases/${id}$`)), page.click("#withdraw-yes")]);
    assert.match(await page.textContent(".status"), /Withdrawn/);
    assert.match(await page.textContent("#withdrawn"), /Lam Sut I \(p010\)/);
    assert.equal((await page.textContent("#withdraw-reason")).trim(), "The trip was cancelled; I will work those days.");
    assert.equal(await page.locator("#withdraw-ask").count(), 0, "nothing left to withdraw");
    await shot(page, "w3-withdrawn");

    // The other case is withdrawn elsewhere (another tab, the API) while the page asks.
    await page.goto(`${BASE}/cases/${late}`);
    await page.click("#withdraw summary");
    await page.click("#withdraw-ask");
    await page.locator("#withdraw-confirm").waitFor();
    const elsewhere = await apiAs("p010", "POST", `/api/v1/cases/${late}/withdraw`, { reason: "from the API" });
    assert.equal(elsewhere.status, 200, JSON.stringify(elsewhere.json));
    await page.click("#withdraw-yes");
    const refused = page.locator("#withdraw-refused");
    await refused.waitFor();
    assert.match(await refused.textContent(), /Not withdrawn: The case has a final decision and cannot be withdrawn\. \(CARIMBO-E0311\)/);
    assert.equal(await refused.getAttribute("role"), "alert");
    assert.match(await page.textContent(".status"), /Withdrawn/);
    await shot(page, "w4-withdraw-refused");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
