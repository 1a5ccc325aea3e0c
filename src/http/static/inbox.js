// The approver's batch: select-all, one confirmation, then every selected step signed with the
// chosen key file (steps at the `simple` level are sealed by the server and need no key) and
// sent in one POST /api/v1/acts/batch. Each row shows its own result. Messages come from the
// page in its language.
"use strict";

(() => {
  const form = document.getElementById("batch");
  if (!form) return;
  const msg = (name) => form.dataset["msg" + name.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join("")] || "";
  const all = document.getElementById("select-all");
  const picks = () => Array.from(form.querySelectorAll("input.pick"));
  const confirmBox = document.getElementById("confirm");
  const result = document.getElementById("batch-result");
  const keyInput = document.getElementById("keyfile");
  // Provider `hsm`: no key file; one code authorizes exactly the listed signatures.
  const onHsm = form.dataset.provider === "hsm";

  all.addEventListener("change", () => picks().forEach((p) => { p.checked = all.checked; }));
  form.addEventListener("change", (e) => {
    if (e.target.classList && e.target.classList.contains("pick")) all.checked = picks().every((p) => p.checked);
  });

  function say(kind, text) {
    result.replaceChildren();
    const p = document.createElement("p");
    p.className = kind;
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.textContent = text;
    result.append(p);
  }

  function selected() {
    return picks().filter((p) => p.checked).map((p) => p.closest("tr.item"));
  }

  // The action a row takes: the chosen one, or `sign` where a step signs rather than approves.
  function actionFor(row, chosen) {
    const allowed = row.dataset.actions.split(" ");
    if (allowed.includes(chosen)) return chosen;
    if (chosen === "approve" && allowed.includes("sign")) return "sign";
    return chosen;
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const rows = selected();
    if (!rows.length) return say("error", msg("none"));
    const needsKey = !onHsm && rows.some((r) => r.dataset.level !== "simple");
    if (needsKey && !(keyInput && keyInput.files && keyInput.files[0])) return say("error", msg("nokey"));
    const code = document.getElementById("totp");
    if (onHsm && !(code && code.value.trim())) return say("error", msg("nocode"));
    const action = document.getElementById("action").value;
    const keyName = onHsm ? ` · ${msg("hsm")}` : needsKey ? ` · ${keyInput.files[0].name}` : "";
    document.getElementById("confirm-text").textContent =
      `${msg("confirm")} ${msg("action-" + action)} · ${rows.length} ${msg("items")}${keyName}`;
    // Every case the batch will act on, with what it is about: nobody approves a count.
    const list = document.getElementById("confirm-list");
    list.replaceChildren(...rows.map((r) => {
      const li = document.createElement("li");
      li.dataset.case = r.dataset.case;
      const head = document.createElement("strong");
      head.textContent = r.dataset.title;
      const id = document.createElement("code");
      id.textContent = r.dataset.case;
      li.append(head, " ", id);
      if (r.dataset.summary) li.append(document.createElement("br"), r.dataset.summary);
      return li;
    }));
    confirmBox.hidden = false;
    document.getElementById("confirm-yes").focus();
  });

  document.getElementById("confirm-no").addEventListener("click", () => { confirmBox.hidden = true; });

  document.getElementById("confirm-yes").addEventListener("click", async () => {
    confirmBox.hidden = true;
    const go = document.getElementById("batch-go");
    go.disabled = true;
    say("muted", msg("working"));
    try {
      await run(selected(), document.getElementById("action").value);
    } catch (err) {
      say("error", err && err.message ? err.message : String(err));
    } finally {
      go.disabled = false;
    }
  });

  // One request: the listed acts and the code; the server authorizes, signs on the HSM and
  // answers one result per case.
  async function hsmBatch(rows, chosen, comment, totp) {
    const hsm = rows.map((row) => ({ case: row.dataset.case, step: row.dataset.step, action: actionFor(row, chosen), comment }));
    const res = await carimbo.api("/api/v1/acts/batch", { hsm, totp });
    if (!res.ok) throw new Error((res.json && (res.json.title + (res.json.detail ? ` (${res.json.detail})` : ""))) || String(res.status));
    return res.json.results;
  }

  async function run(rows, chosen) {
    const comment = document.getElementById("comment").value.trim() || undefined;
    const totpInput = document.getElementById("totp");
    const totp = totpInput && totpInput.value.trim() ? totpInput.value.trim() : undefined;
    if (onHsm) return show(rows, await hsmBatch(rows, chosen, comment, totp), new Map());
    let signer = null;
    let x5c = null;
    if (rows.some((r) => r.dataset.level !== "simple")) {
      const key = await carimbo.signerFor(keyInput);
      signer = key.signer;
      x5c = key.x5c;
    }
    const items = [];
    const early = new Map();
    for (const row of rows) {
      const item = { case: row.dataset.case, step: row.dataset.step, action: actionFor(row, chosen), comment, totp };
      item.idempotency_key = `${item.case}:${item.step}:${item.action}:${Date.now()}`;
      if (row.dataset.level !== "simple") {
        const p = await carimbo.api("/api/v1/signing-payload", { kind: "act", case: item.case, step: item.step, action: item.action });
        if (!p.ok) {
          early.set(item.case, (p.json && p.json.title) || String(p.status));
          continue;
        }
        item.signed = { payload: p.json.payload, signature: await carimbo.sign(signer, p.json.canonical, x5c) };
      }
      items.push(item);
    }
    let answers = [];
    if (items.length) {
      const res = await carimbo.api("/api/v1/acts/batch", { items });
      if (!res.ok) throw new Error((res.json && (res.json.title + (res.json.detail ? ` (${res.json.detail})` : ""))) || String(res.status));
      answers = res.json.results;
    }
    show(rows, answers, early);
  }

  // Each row's own result, then the count.
  function show(rows, answers, early) {
    let ok = 0;
    let failed = 0;
    for (const row of rows) {
      const cell = row.querySelector("td.result");
      const answer = answers.find((a) => a.case === row.dataset.case);
      cell.replaceChildren();
      const span = document.createElement("span");
      if (answer && answer.ok) {
        ok++;
        span.className = "ok";
        span.textContent = `✓ ${msg("ok")}`;
        row.querySelector("input.pick").disabled = true;
        row.querySelector("input.pick").checked = false;
      } else {
        failed++;
        span.className = "error";
        const problem = answer && answer.problem;
        span.textContent = `✗ ${early.get(row.dataset.case) || (problem ? problem.title + (problem.detail ? ` (${problem.detail})` : "") : "")}`;
      }
      row.dataset.result = answer && answer.ok ? "ok" : "failed";
      cell.append(span);
    }
    say(failed ? "error" : "ok", `${ok} ${msg("done")} ${failed} ${msg("failed")}`);
  }
})();
