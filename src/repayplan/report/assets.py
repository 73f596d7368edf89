"""The report's inline stylesheet and script (no file, font or script is loaded from
anywhere: the page's Content-Security-Policy forbids it)."""

from __future__ import annotations

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

CSS = """
:root { --navy:#1f3b5c; --teal:#2a9d8f; --amber:#e9a23b; --red:#c8553d; --ink:#1d2733;
        --muted:#5b6875; --line:#dde3e9; --bg:#f4f6f8; --card:#fff; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin:0; font-family: Inter, "Segoe UI", Helvetica, Arial, sans-serif; color:var(--ink);
       background:var(--bg); line-height:1.45; }
header.top { background:var(--navy); color:#fff; padding:18px 32px 16px; }
header.top h1 { margin:0; font-size:1.45rem; font-weight:650; letter-spacing:.2px; }
header.top .meta { color:#c9d6e3; font-size:.88rem; margin-top:4px; }
header.top .status { display:inline-block; padding:1px 9px; border-radius:10px; font-size:.8rem;
       font-weight:600; margin-left:8px; vertical-align:2px; }
.status.succeeded { background:#d4efe9; color:#135e54; }
.status.partial { background:#fbe9c9; color:#7a4d00; }
.status.failed, .status.interrupted { background:#f6d5cf; color:#7c2414; }
nav.toc { background:#fff; border-bottom:1px solid var(--line); padding:8px 32px;
       font-size:.85rem; position:sticky; top:0; z-index:2; display:flex; flex-wrap:wrap;
       gap:2px 16px; }
nav.toc a { color:var(--navy); text-decoration:none; }
nav.toc a:hover { text-decoration:underline; }
main { max-width:1180px; margin:0 auto; padding:20px 32px 48px; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit, minmax(140px, 1fr)); gap:12px;
        margin-bottom:16px; }
.kpi { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.kpi .label { color:var(--muted); font-size:.78rem; text-transform:uppercase; letter-spacing:.5px; }
.kpi .value { font-size:1.55rem; font-weight:650; margin-top:2px; }
.kpi .sub { color:var(--muted); font-size:.8rem; }
.kpi.warn .value { color:var(--red); }
.kpi.good .value { color:#1c7a6e; }
.glance { background:var(--card); border:1px solid var(--line); border-left:4px solid var(--teal);
          border-radius:8px; padding:12px 18px; margin-bottom:18px; }
.glance h2 { font-size:1.05rem; margin:0 0 6px; border:0; padding:0; }
.glance ul { margin:0; padding-left:18px; }
.glance li { margin:3px 0; }
section.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
        padding:16px 20px 18px; margin:0 0 18px; }
section.card > h2 { margin:0 0 4px; font-size:1.15rem; color:var(--navy); }
p.lead { margin:2px 0 12px; color:var(--muted); font-size:.9rem; }
.note { color:var(--muted); font-size:.85rem; }
.empty { padding:10px 14px; background:#f7f9fa; border:1px dashed var(--line); border-radius:6px;
         color:var(--muted); }
.grid2 { display:grid; grid-template-columns: minmax(0, 1.25fr) minmax(0, 1fr); gap:18px;
         align-items:start; }
.grid2 > div { min-width:0; overflow-x:auto; }
.grid2.wide { grid-template-columns: minmax(0, 0.85fr) minmax(0, 1.15fr); }
table.data.side { width:auto; min-width:60%; }
table.data.side th[scope=row] { width:190px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
figure.chart { margin:0 0 10px; }
figure.chart svg { width:100%; max-width:760px; height:auto; display:block; }
table.data { border-collapse:collapse; width:100%; font-size:.85rem; margin:6px 0 4px; }
table.data th, table.data td { padding:5px 8px; border-bottom:1px solid var(--line);
        text-align:left; vertical-align:top; }
table.data th { background:#f0f3f6; color:#34414e; font-weight:600; position:relative;
        white-space:nowrap; }
table.data th.sortable { cursor:pointer; user-select:none; padding-right:18px; }
table.data th.sortable::after { content:"\\2195"; position:absolute; right:5px; color:#9aa5b1;
        font-size:.75rem; }
table.data th.asc::after { content:"\\25B2"; color:var(--navy); }
table.data th.desc::after { content:"\\25BC"; color:var(--navy); }
table.data td.num, table.data th.num { text-align:right; font-variant-numeric: tabular-nums; }
table.data tr:hover td { background:#fafbfc; }
table.data tr.chosen td { background:#eef8f6; font-weight:600; }
.scroll { max-height:420px; overflow:auto; border:1px solid var(--line); border-radius:6px; }
.scroll table.data { margin:0; }
.scroll table.data th { position:sticky; top:0; z-index:1; }
details.loan { border:1px solid var(--line); border-radius:6px; margin:8px 0; background:#fff; }
details.loan > summary { cursor:pointer; padding:8px 12px; font-weight:600; color:var(--navy); }
details.loan > summary .tag { font-weight:500; color:var(--muted); margin-left:8px; }
details.loan .body { padding:4px 14px 12px; }
.pill { display:inline-block; padding:0 7px; border-radius:9px; font-size:.75rem;
        background:#eef1f4; color:#34414e; }
.pill.bind { background:#fbe3dd; color:#7c2414; font-weight:600; }
.pill.slack { background:#e1f3ef; color:#135e54; }
code, pre { font-family: "SFMono-Regular", Consolas, monospace; font-size:.8rem; }
pre.sql { background:#f5f7f9; border:1px solid var(--line); border-radius:6px; padding:8px 10px;
          overflow-x:auto; white-space:pre; margin:6px 0 0; }
details.sql > summary { cursor:pointer; color:var(--muted); font-size:.8rem; margin-top:8px; }
footer { color:var(--muted); font-size:.8rem; text-align:center; padding:14px; }
"""

#: Click a header to sort its table (numbers by their data-v value), again to reverse.
JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v !== null && v !== '') { var f = parseFloat(v); if (!isNaN(f)) return f; }
    return (cell.textContent || '').trim().toLowerCase();
  }
  function sortBy(th) {
    var table = th.closest('table'), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = !th.classList.contains('asc');
    Array.prototype.forEach.call(th.parentNode.children, function (h) {
      h.classList.remove('asc', 'desc'); h.removeAttribute('aria-sort');
    });
    th.classList.add(asc ? 'asc' : 'desc');
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      if (typeof x === 'number' && typeof y !== 'number') return -1;
      if (typeof y === 'number' && typeof x !== 'number') return 1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable th').forEach(function (th) {
    th.classList.add('sortable');
    th.setAttribute('tabindex', '0');
    th.addEventListener('click', function () { sortBy(th); });
    th.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(th); }
    });
  });
  document.documentElement.setAttribute('data-report-ready', '1');
})();
"""
