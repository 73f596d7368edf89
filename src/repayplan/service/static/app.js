// The borrower page: a quote from what the borrower types, or — opened from the lender's
// link (#loan=…&token=…) — the loan's offers and fresh ones after a reported hardship, and
// accepting one. Talks only to this service (/v1); nothing is loaded from elsewhere.
(function () {
  "use strict";
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const loanId = hash.get("loan");
  const token = hash.get("token");
  let lang = hash.get("lang") || query.get("lang") ||
    ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en");
  let currency = "EUR";
  let lastRender = null;
  let income = 0;
  const $ = (id) => document.getElementById(id);

  function t(key, vars) {
    const table = window.I18N[lang] || window.I18N.en;
    let s = table[key] !== undefined ? table[key] : (window.I18N.en[key] || key);
    for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
    return s;
  }
  function money(v) {
    return new Intl.NumberFormat(lang, { style: "currency", currency: currency }).format(Number(v));
  }
  function pct(v, digits) {
    return v === null || v === undefined ? "—" :
      new Intl.NumberFormat(lang, { maximumFractionDigits: digits }).format(Number(v)) + "%";
  }
  function applyLang() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
    document.title = t("title");
    if (loanId) $("form-title").textContent = t("tellUsLoan");
    document.querySelectorAll(".lang button").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
    });
    if (lastRender) lastRender();
  }
  function headers(write) {
    const h = { "Content-Type": "application/json", "Accept": "application/json" };
    if (token) h["X-Borrower-Token"] = token;
    if (write) h["Idempotency-Key"] = write;
    return h;
  }
  async function call(method, path, body, key) {
    const res = await fetch(path, { method, headers: headers(key), body: body ? JSON.stringify(body) : undefined });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) { const e = new Error(data.detail || res.statusText); e.problem = data; throw e; }
    return data;
  }
  function status(text) { $("status").textContent = text || ""; }
  function showError(err) {
    const p = err.problem;
    const box = $("form-error");
    box.hidden = false;
    box.textContent = t("error", { detail: p && p.field ? p.field + ": " + (p.errors ? p.errors[0].reason : p.detail) : err.message });
    status("");
  }
  function number(id, label, required) {
    const raw = $(id).value.trim().replace(/[,，\s]/g, "");
    if (raw === "") { if (required) throw new Error(t("needField", { field: t(label) })); return 0; }
    if (!/^\d+(\.\d{1,2})?$/.test(raw)) throw new Error(t("badNumber", { field: t(label) }));
    return raw;
  }
  function chart(installments) {
    const pays = installments.map((i) => Number(i.payment));
    const max = Math.max(...pays, 1), w = 300, h = 70, bw = w / Math.max(pays.length, 1);
    const bars = pays.map((p, k) =>
      `<rect x="${(k * bw).toFixed(2)}" y="${(h - (p / max) * (h - 4)).toFixed(2)}" width="${Math.max(bw - 0.6, 0.4).toFixed(2)}" height="${((p / max) * (h - 4)).toFixed(2)}" fill="#0a6e5c"></rect>`).join("");
    return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="payments over time">${bars}</svg>`;
  }
  function card(o, canAccept) {
    const share = income > 0 ? Number(o.max_payment) / income * 100 : (o.max_payment_to_income || 0) * 100;
    const el = document.createElement("article");
    el.className = "option" + (o.status === "booked" ? " booked" : "");
    el.dataset.name = o.name || o.alternative;
    if (o.offer_id) el.dataset.offer = o.offer_id;
    if (o.needs_review !== undefined) el.dataset.review = String(o.needs_review);
    const name = o.name || o.alternative;
    el.innerHTML = `<h3>${t("n_" + name) === "n_" + name ? name : t("n_" + name)}</h3>
      <dl>
        <dt>${t("installment")}</dt><dd class="v-installment">${money(o.first_payment)}</dd>
        <dt>${t("largest")}</dt><dd>${money(o.max_payment)}</dd>
        <dt>${t("termLabel")}</dt><dd class="v-term">${t("months", { n: o.term_periods })}</dd>
        <dt>${t("totalPaid")}</dt><dd class="v-total">${money(o.total_paid)}</dd>
        <dt>${t("incomeShare")}</dt><dd class="v-share">${pct(share, 1)}</dd>
        <dt>${t("apr")}</dt><dd class="v-apr">${pct(o.apr_percent, 2)}</dd>
        <dt>${t("irr")}</dt><dd class="v-irr">${pct(o.irr_annual_percent, 2)}</dd>
      </dl>
      ${chart(o.installments)}
      <p class="why">${escapeHtml(o.explanation || "")}</p>
      ${o.status && o.status !== "offered" ? `<p class="offer-status">${t("status_" + o.status)}</p>` : ""}`;
    if (canAccept && o.offer_id && o.status === "offered") {
      const b = document.createElement("button");
      b.type = "button"; b.className = "accept"; b.textContent = t("accept");
      b.addEventListener("click", () => accept(o, b));
      el.appendChild(b);
    }
    return el;
  }
  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function render(options, reasons, canAccept) {
    lastRender = () => render(options, reasons, canAccept);
    const box = $("options");
    box.innerHTML = "";
    const none = $("no-plan");
    if (!options.length) {
      none.hidden = false;
      none.textContent = t("noPlan") + (reasons && reasons.length ? " " + reasons.join(" ") : "");
    } else {
      none.hidden = true;
    }
    options.forEach((o) => box.appendChild(card(o, canAccept)));
    if (!canAccept && options.length && !loanId) status(t("quoteOnly"));
  }
  async function quote(ev) {
    ev.preventDefault();
    $("form-error").hidden = true;
    let body;
    try {
      if (loanId) {
        income = Number(number("f-income", "income", true));
        body = { reason: $("f-hardship").value === "none" ? "other" : $("f-hardship").value,
                 income_now: number("f-income", "income", true) };
        if ($("f-recovery").value) body.expected_recovery_date = $("f-recovery").value;
      } else {
        const inc = Number(number("f-income", "income", true));
        const spend = Number(number("f-spending", "spending", true));
        const debts = Number(number("f-debts", "debts", false));
        income = inc;
        if (inc - spend - debts <= 0) {
          render([], [t("noRoom")], false); status(""); return;
        }
        body = { balance: number("f-balance", "balance", true), annual_rate_percent: number("f-rate", "rate", true),
                 remaining_term_months: Number($("f-term").value || 36), monthly_income: String(inc),
                 essential_expenses: String(spend), other_debt: String(debts),
                 arrears: number("f-arrears", "arrears", false) || "0", hardship: ["other"].includes($("f-hardship").value) ? "none" : $("f-hardship").value };
      }
    } catch (err) { showError(err); return; }
    status(t("loading"));
    try {
      if (loanId) {
        const key = "hardship-" + JSON.stringify(body);
        const res = await call("POST", `/v1/loans/${encodeURIComponent(loanId)}/hardship`, body, idemKey(key));
        status("");
        render(res.offers, res.reasons && !res.offers.length ? res.reasons : [], true);
      } else {
        const res = await call("POST", "/v1/quotes", body);
        currency = res.currency || currency;
        status("");
        render(res.alternatives, res.status === "manual_review" ? res.reasons : [], false);
      }
    } catch (err) { showError(err); }
  }
  // One key per distinct request, kept for retries (a double click or a reload resends it).
  function idemKey(what) {
    const store = window.sessionStorage;
    const k = "idem:" + what;
    let v = store.getItem(k);
    if (!v) { v = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()); store.setItem(k, v); }
    return v;
  }
  async function accept(o, button) {
    button.disabled = true;
    try {
      const res = await call("POST", `/v1/offers/${encodeURIComponent(o.offer_id)}/accept`, {}, idemKey("accept-" + o.offer_id));
      document.querySelectorAll(".accept").forEach((b) => { b.disabled = true; });
      button.textContent = t("accepted");
      if (res.booking === "pending") { status(t("pendingMsg")); poll(o.offer_id, 0); }
      else status(t("reviewMsg"));
    } catch (err) { button.disabled = false; showError(err); }
  }
  async function poll(offerId, tries) {
    const o = await call("GET", `/v1/offers/${encodeURIComponent(offerId)}`).catch(() => null);
    if (o && o.status === "booked") {
      status(t("bookedMsg", { amount: money(o.installments[0].payment), date: o.installments[0].due_date }));
      const el = document.querySelector(`[data-offer="${offerId}"]`);
      if (el) el.classList.add("booked");
      $("status").dataset.booked = offerId;
      loadLoan();
      return;
    }
    if (tries < 120) setTimeout(() => poll(offerId, tries + 1), 1000);
  }
  async function loadLoan() {
    const l = await call("GET", `/v1/loans/${encodeURIComponent(loanId)}`);
    currency = l.currency || currency;
    $("loan").hidden = false;
    const facts = [["loanBalance", money(l.outstanding_principal)], ["loanInstallment", money(l.installment)],
      ["loanNext", l.next_due_date || "—"], ["loanLeft", String(l.remaining_term)],
      ["loanStatus", l.status]];
    $("loan-facts").innerHTML = facts.map(([k, v]) => `<dt>${t(k)}</dt><dd data-k="${k}">${escapeHtml(v)}</dd>`).join("");
  }
  async function start() {
    document.querySelectorAll(".lang button").forEach((b) => b.addEventListener("click", () => { lang = b.dataset.lang; applyLang(); if (loanId) loadLoan(); }));
    $("quote-form").addEventListener("submit", quote);
    document.querySelectorAll(loanId ? ".quote-only" : ".loan-only").forEach((el) => { el.hidden = true; });
    try { const c = await call("GET", "/v1/config"); currency = c.currency || currency; } catch (e) { /* offline */ }
    applyLang();
    if (loanId) {
      try {
        await loadLoan();
        const res = await call("GET", `/v1/loans/${encodeURIComponent(loanId)}/offers`);
        const open = res.offers.filter((o) => o.status === "offered" || o.status === "booked");
        if (open.length) { render(open, [], true); }
      } catch (err) { showError(err); }
    }
    document.documentElement.dataset.ready = "1";
  }
  start();
})();
