/**
 * The page around the charts: its style, a table of comparison rows (the same rows the terminal shows), and the
 * document shell. Shared by the run page (html.ts) and the search pages (capacity-html.ts, scale-html.ts), so every
 * page of rtp-bench looks and escapes alike: self-contained, no script, nothing fetched.
 */
import { rowMark, ratioText, type ComparisonRow } from './compare.js';
import { esc } from './svg.js';

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222; background: #fafafa; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
article h2 { margin: 0 0 8px; font-size: 15px; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.muted { color: #777; }
.runs { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 14px; }
article.run { background: #fff; border: 1px solid #ddd; border-top: 5px solid #999; border-radius: 4px; padding: 12px 14px; }
article.run.interrupted { background: #fff8f0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dt { color: #666; }
dd { margin: 0; overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
.warning { background: #fff1e0; border-left: 4px solid #f28e2b; padding: 4px 8px; margin: 8px 0 0; }
details.failures { margin-top: 8px; }
details.failures ul { margin: 4px 0 0; padding-left: 18px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
table.figures { border-collapse: collapse; background: #fff; border: 1px solid #ddd; }
table.figures th, table.figures td { padding: 3px 12px; border-bottom: 1px solid #eee; text-align: left; }
table.figures thead th { border-bottom: 2px solid #ccc; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
table.figures tbody th { font-weight: normal; color: #444; }
table.figures th.indent { padding-left: 28px; color: #666; }
table.figures tr.num td { text-align: right; font-variant-numeric: tabular-nums; }
table.figures .ratio { text-align: right; color: #555; background: #f6f6f6; }
table.figures td.mark { text-align: left; font-weight: 600; }
table.figures td.mark.better { color: #2e7d32; background: #eef7ee; }
table.figures td.mark.worse { color: #c62828; background: #fbeeee; }
table.figures td.mark.same { color: #888; font-weight: normal; }
table.steps td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.steps td.text { text-align: left; white-space: normal; }
table.steps tr.fail td { background: #fdf3f3; }
p.answer { font-size: 15px; background: #fff; border-left: 4px solid #59a14f; padding: 6px 10px; margin: 10px 0; }
p.answer.none { border-left-color: #e15759; }
section.profile { margin-top: 10px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(570px, 1fr)); gap: 14px; }
figure.chart { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 10px 10px 4px; }
figcaption { margin: 0 0 6px; font-size: 13px; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
svg text { fill: #333; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg text.muted { fill: #999; }
svg text.axis-title { fill: #666; }
svg text.on-bar { fill: #fff; font-weight: 600; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .plot { fill: none; stroke: #bbb; }
svg .track { fill: #f1f1f1; }
.note { color: #666; font-size: 12px; margin: 4px 0; }
.note.problem { color: #a33; }
footer { margin-top: 30px; color: #888; font-size: 12px; }
`;

/** "2026-01-01 12:00:00 UTC" from an ISO time; anything else as it is. */
export function dateText(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

/**
 * Comparison rows as a table, one column per file (`heads` is markup, its parts escaped); with two files, run 2 /
 * run 1 and the better/worse mark of each row that has a direction.
 */
export function figuresTable(heads: readonly string[], rows: readonly ComparisonRow[]): string {
  const two = heads.length === 2;
  const body = rows.map((row) => {
    const cells = row.cells.map((c) => `<td>${esc(c)}</td>`).join('');
    const mark = rowMark(row);
    const extra = two
      ? `<td class="ratio">${row.values ? esc(ratioText(row.values[0], row.values[1])) : ''}</td><td class="mark${mark === null ? '' : ` ${mark}`}">${mark ?? ''}</td>`
      : '';
    const numeric = row.values ? ' class="num"' : '';
    return `<tr${numeric}><th scope="row"${row.indent ? ' class="indent"' : ''}>${esc(row.label)}</th>${cells}${extra}</tr>`;
  });
  const extraHead = two ? '<th class="ratio">2 / 1</th><th>2 vs 1</th>' : '';
  return `<table class="figures"><thead><tr><th></th>${heads.map((h) => `<th>${h}</th>`).join('')}${extraHead}</tr></thead><tbody>${body.join('')}</tbody></table>`;
}

/** A plain table: `head` and `rows` are text (escaped here); cells of `textColumns` are left-aligned words. */
export function plainTable(className: string, head: readonly string[], rows: readonly { cells: readonly string[]; className?: string }[], textColumns: ReadonlySet<number> = new Set()): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr${r.className ? ` class="${esc(r.className)}"` : ''}>${r.cells.map((c, i) => `<td${textColumns.has(i) ? ' class="text"' : ''}>${esc(c)}</td>`).join('')}</tr>`);
  return `<table class="figures ${esc(className)}"><thead><tr>${th}</tr></thead><tbody>${body.join('')}</tbody></table>`;
}

/** The whole document: `body` is markup. */
export function pageHtml(title: string, body: readonly string[]): string {
  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body><main>',
    ...body,
    `<footer>Written by rtp-bench. Self-contained: no scripts, no external resources.</footer>`,
    '</main></body></html>',
  ];
  return `${parts.join('\n')}\n`;
}
