/**
 * Reading output back, for tests: a console table's row by its label; a chart's figure by its title, elements by
 * class, their attributes, and each axis from its own tick labels. A test that checks a line against the axis read
 * this way checks what a reader of the chart sees, not the function that drew it.
 */
import assert from 'node:assert/strict';

/** The cells of the console table's line that starts with `label`, without the borders. */
export function tableLine(table: string, label: string): string[] {
  const found = table.split('\n').find((l) => l.startsWith(`│ ${label} `));
  assert.ok(found !== undefined, `a row ${label} in\n${table}`);
  return found.split('│').slice(1, -1).map((c) => c.trim());
}

/** The <figure> holding the chart whose title contains `title`. */
export function figureWith(page: string, title: string): string {
  const figures = page.split('<figure class="chart">').slice(1).map((f) => f.slice(0, f.indexOf('</figure>')));
  const found = figures.find((f) => (/<strong>(.*?)<\/strong>/.exec(f)?.[1] ?? '').includes(title));
  assert.ok(found !== undefined, `a chart titled ${title}`);
  return found;
}

/** Every start tag `<tag class="className ...">` (the class first, as the charts write it), as attribute maps. */
export function elements(svg: string, tag: string, className: string): Record<string, string>[] {
  const re = new RegExp(`<${tag} class="${className}(?: [^"]*)?"[^>]*>`, 'g');
  return [...svg.matchAll(re)].map((m) => attributes(m[0]));
}

export function attributes(startTag: string): Record<string, string> {
  return Object.fromEntries([...startTag.matchAll(/([\w:-]+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

export function num(attrs: Record<string, string>, name: string): number {
  const v = Number(attrs[name]);
  assert.ok(Number.isFinite(v), `attribute ${name} in ${JSON.stringify(attrs)}`);
  return v;
}

/** value -> pixel through the first and last labelled tick. */
function axisFrom(ticks: { value: number; px: number }[], which: string): (v: number) => number {
  assert.ok(ticks.length >= 2, `${which} axis: at least two labelled ticks`);
  const a = ticks[0]!;
  const b = ticks[ticks.length - 1]!;
  return (v) => a.px + ((v - a.value) * (b.px - a.px)) / (b.value - a.value);
}

/** The y axis: its tick labels stand right-aligned at the left of the plot. */
export function yAxisOf(svg: string): (v: number) => number {
  const ticks = [...svg.matchAll(/<text x="[\d.]+" y="([\d.]+)" dy="0.35em" text-anchor="end">([^<]*)<\/text>/g)].map((m) => ({ value: Number(m[2]), px: Number(m[1]) }));
  return axisFrom(ticks, 'y');
}

/** The x axis: its tick labels stand centred under the plot (titles and labels in the plot carry a class). */
export function xAxisOf(svg: string): (v: number) => number {
  const ticks = [...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" text-anchor="middle">([^<]*)<\/text>/g)].map((m) => ({ value: Number(m[2]), px: Number(m[1]) }));
  return axisFrom(ticks, 'x');
}

/** Pixels are written with one decimal: equal within rounding. */
export function closeTo(actual: number, expected: number, what: string, tolerance = 0.11): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} px, expected ${expected.toFixed(2)} px`);
}
