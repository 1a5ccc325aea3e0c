// The sign-and-submit step of a form page. The server has validated the data; this script asks
// the API for the exact payload to sign, signs it with the key file the person chose (the key
// stays in the page), and submits; a person whose key is on the HSM or at the remote signing
// service gives their code instead (`device`), and the server signs there. The step says what it
// signs (`data-kind`): a new case of a form (`submit`: POST /api/v1/cases, then a link to the new
// case), or the corrected data of a returned case (`resubmit`: POST /api/v1/cases/{id}/resubmit,
// then back to the case's page). Messages come from the page in its language.
"use strict";

(() => {
  const box = document.getElementById("sign");
  if (!box) return;
  const button = document.getElementById("sign-submit");
  const result = document.getElementById("sign-result");
  const keyInput = document.getElementById("keyfile");
  const msg = (name) => box.dataset["msg" + name[0].toUpperCase() + name.slice(1)] || "";

  // One key per filled-in form: pressing again after a lost answer lands on the same case.
  const idempotencyKey = (crypto.randomUUID && crypto.randomUUID()) ||
    Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");

  function show(kind, text, details) {
    result.replaceChildren();
    const p = document.createElement("p");
    p.className = kind;
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.textContent = text;
    result.append(p);
    if (details && details.length) {
      const ul = document.createElement("ul");
      for (const d of details) {
        const li = document.createElement("li");
        li.textContent = d;
        ul.append(li);
      }
      result.append(ul);
    }
    return p;
  }

  function problemText(res) {
    const j = res.json || {};
    const lines = (j.errors || []).map((e) => `${e.pointer}: ${e.message}`);
    return { text: msg("failed") + (j.title || res.status) + (j.detail ? ` (${j.detail})` : ""), lines };
  }

  // What is signed and where it goes, by the step's kind.
  const resubmit = box.dataset.kind === "resubmit";
  const caseId = box.dataset.case;
  const payloadRequest = (data) => resubmit
    ? { kind: "resubmit", case: caseId, data }
    : { kind: "submit", form: box.dataset.form, data, idempotency_key: idempotencyKey };
  const post = (data, signed, device) => resubmit
    ? carimbo.api(`/api/v1/cases/${encodeURIComponent(caseId)}/resubmit`, { data, signed, device })
    : carimbo.api("/api/v1/cases", { form: box.dataset.form, data, idempotency_key: idempotencyKey, signed, device });
  // Provider `hsm` or `remote`: no key file; the person's code authorizes this one signature,
  // which the server makes on their device over exactly the data shown.
  const onDevice = box.dataset.provider === "hsm" || box.dataset.provider === "remote";

  // A signer signs exactly what they see: the summary above shows the checked data, and once
  // any field of the form is changed after the check, signing is refused until it is checked
  // again (the server then shows the new data in the summary).
  let changed = false;
  const formEl = document.getElementById("fill");
  const stale = () => {
    if (changed) return;
    changed = true;
    button.disabled = true;
    box.dataset.stale = "true";
    show("error", msg("changed"));
  };
  if (formEl) {
    formEl.addEventListener("input", stale);
    formEl.addEventListener("change", stale);
  }

  async function signAndSubmit() {
    if (changed) {
      show("error", msg("changed"));
      return;
    }
    const data = JSON.parse(document.getElementById("data-json").value);
    let signed;
    let device;
    if (box.dataset.level !== "simple" && onDevice) {
      const input = document.getElementById("totp");
      const code = input ? input.value.trim() : "";
      if (!code) {
        show("error", msg("nocode"));
        return;
      }
      device = { totp: code };
      input.value = "";
    } else if (box.dataset.level !== "simple") {
      if (!keyInput || !keyInput.files || !keyInput.files[0]) {
        show("error", msg("nokey"));
        return;
      }
      let key;
      try {
        key = await carimbo.signerFor(keyInput);
      } catch (e) {
        show("error", e.message);
        return;
      }
      const payload = await carimbo.api("/api/v1/signing-payload", payloadRequest(data));
      if (!payload.ok) {
        const p = problemText(payload);
        show("error", p.text, p.lines);
        return;
      }
      signed = { payload: payload.json.payload, signature: await carimbo.sign(key.signer, payload.json.canonical, key.x5c) };
    }
    const res = await post(data, signed, device);
    if (!res.ok) {
      const p = problemText(res);
      show("error", p.text, p.lines);
      return;
    }
    const id = res.json.case.id;
    const p = show("ok", msg("done"));
    const a = document.createElement("a");
    a.href = `/cases/${encodeURIComponent(id)}`;
    a.id = "new-case";
    a.textContent = id;
    p.append(a);
    button.disabled = true;
    // A corrected case goes back to its page, which shows it open again with the new data.
    if (resubmit) location.assign(a.href);
  }

  button.disabled = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    show("muted", msg("working"));
    try {
      await signAndSubmit();
    } catch (e) {
      show("error", msg("failed") + (e && e.message ? e.message : String(e)));
    } finally {
      if (!document.getElementById("new-case") && !changed) button.disabled = false;
    }
  });
})();
