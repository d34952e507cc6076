/**
 * Latency-vs-load chart of a saved benchmark report, as standalone SVG text
 * (no dependencies): one panel per subscriber count of the fanout scenarios,
 * x = delivered events per second, y = publish-to-receive latency, both log scale.
 */

import type { RunMetrics } from './harness.js';
import type { BenchReport } from './report-types.js';

// ---------------------------------------------------------------- look

const COLOURS: Readonly<Record<string, string>> = {
  herald: '#1f5fd6',
  nchan: '#f28e1c',
  naive: '#8a8f98',
};
/** For a server this chart does not know yet. */
const SPARE_COLOURS = ['#2a9d6f', '#b23a8f', '#6b4fd1', '#c0392b'];
const SERVER_ORDER = ['herald', 'nchan', 'naive'];

const FONT = `system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Liberation Sans', sans-serif`;
const INK = '#1d2330';
const MUTED = '#5b6472';
const FAINT = '#8a93a1';
const GRID = '#e6e9ee';
const GRID_MINOR = '#f2f4f7';
const AXIS = '#b9c0ca';

const HEIGHT = 600;
const MARGIN_LEFT = 78;
const MARGIN_RIGHT = 28;
const PANEL_GAP = 64;
const PANEL_WIDTH = 515;
const MIN_WIDTH = 860;
const TITLE_Y = 34;
const SUBTITLE_Y = 56;
const LEGEND_Y = 84;
const PLOT_TOP = 130;
const PLOT_BOTTOM = HEIGHT - 82;
const FOOTER_Y = HEIGHT - 14;

/** Rough advance width of sans-serif text, to keep labels apart (errs wide). */
function textWidth(text: string, size: number): number {
  return text.length * size * 0.6;
}

// ---------------------------------------------------------------- text

const XML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for XML content and attributes; drops characters XML 1.0 cannot hold. */
export function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

function num(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** 1000 → "1k", 2500 → "2.5k", 1e6 → "1M", 200 → "200". */
export function compactCount(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${trimZeros((value / 1e9).toFixed(abs >= 1e10 ? 0 : 1))}G`;
  if (abs >= 1e6) return `${trimZeros((value / 1e6).toFixed(abs >= 1e7 ? 0 : 1))}M`;
  if (abs >= 1e3) return `${trimZeros((value / 1e3).toFixed(abs >= 1e4 ? 0 : 1))}k`;
  if (abs >= 1 || abs === 0) return trimZeros(value.toFixed(abs >= 10 ? 0 : 1));
  return String(Number(value.toPrecision(2)));
}

function rateLabel(rate: number): string {
  return `${rate >= 10_000 ? compactCount(rate) : trimZeros(rate.toFixed(rate >= 10 ? 0 : 1))}/s`;
}

function latencyTick(ms: number): string {
  if (ms >= 1) return Math.round(ms).toLocaleString('en-US');
  return String(Number(ms.toPrecision(1)));
}

function dateLabel(iso: string): string {
  const date = new Date(iso);
  if (typeof iso !== 'string' || Number.isNaN(date.getTime())) return String(iso ?? '');
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

// ---------------------------------------------------------------- data

interface Point {
  readonly rate: number | undefined;
  /** Median delivered events per second. */
  readonly x: number;
  readonly p99: number;
  readonly p50: number;
  readonly p99Min: number;
  readonly p99Max: number;
  /** Some run lost events. */
  readonly lost: boolean;
  /** How many runs the medians are of. */
  readonly runs: number;
}

interface Series {
  readonly server: string;
  readonly points: Point[];
}

interface Panel {
  readonly subscribers: number;
  readonly series: Series[];
}

function finite(values: readonly (number | undefined)[]): number[] {
  return values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function pointOf(runs: readonly RunMetrics[], subscribers: number, rate: number | undefined): Point | undefined {
  const delivered = finite(runs.map((r) => r?.deliveriesPerSecond));
  // Without a delivery count, place the point at the nominal load; with zero deliveries there is nothing to place.
  const nominal = rate !== undefined && Number.isFinite(rate) ? rate * subscribers : Number.NaN;
  const x = delivered.length > 0 ? median(delivered) : nominal;
  if (!(x > 0) || !Number.isFinite(x)) return undefined;
  const p99s = finite(runs.map((r) => r?.latencyMs?.p99));
  const p50s = finite(runs.map((r) => r?.latencyMs?.p50));
  if (p99s.length === 0 && p50s.length === 0) return undefined;
  return {
    rate,
    x,
    p99: median(p99s),
    p50: median(p50s),
    p99Min: p99s.length > 0 ? Math.min(...p99s) : Number.NaN,
    p99Max: p99s.length > 0 ? Math.max(...p99s) : Number.NaN,
    lost: runs.some((r) => typeof r?.lost === 'number' && r.lost > 0),
    runs: runs.length,
  };
}

function orderServers(names: Iterable<string>): string[] {
  const rank = (name: string): number => (SERVER_ORDER.includes(name) ? SERVER_ORDER.indexOf(name) : SERVER_ORDER.length);
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function panelsOf(report: BenchReport): Panel[] {
  const fanout = (report.results ?? []).filter((r) => r?.scenario?.kind === 'fanout' && Number.isFinite(r.scenario.subscribers));
  const counts = [...new Set(fanout.map((r) => r.scenario.subscribers))].sort((a, b) => a - b);
  return counts.map((subscribers) => {
    const results = fanout.filter((r) => r.scenario.subscribers === subscribers);
    const servers = orderServers(results.flatMap((r) => Object.keys(r.runs ?? {})));
    const series = servers.map((server) => {
      const points: Point[] = [];
      for (const result of results) {
        const runs = (result.runs as Record<string, RunMetrics[] | undefined>)[server];
        if (!Array.isArray(runs) || runs.length === 0) continue;
        const point = pointOf(runs, subscribers, result.scenario.rate);
        if (point) points.push(point);
      }
      // Connect in order of offered load: a server that saturates bends back.
      points.sort((a, b) => (a.rate ?? a.x) - (b.rate ?? b.x) || a.x - b.x);
      return { server, points };
    });
    return { subscribers, series: series.filter((s) => s.points.length > 0) };
  });
}

// ---------------------------------------------------------------- scales

interface LogScale {
  readonly lo: number;
  readonly hi: number;
  readonly at: (value: number) => number;
}

function logScale(lo: number, hi: number, from: number, to: number): LogScale {
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  return { lo, hi, at: (value) => from + ((Math.log10(Math.min(hi, Math.max(lo, value))) - l0) / (l1 - l0)) * (to - from) };
}

/** Whole decades around the values (at least one). */
function decadeDomain(values: readonly number[]): [number, number] {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return [1, 1000];
  let lo = Math.floor(Math.log10(Math.min(...positive)) + 1e-9);
  let hi = Math.ceil(Math.log10(Math.max(...positive)) - 1e-9);
  if (hi <= lo) hi = lo + 1;
  return [10 ** lo, 10 ** hi];
}

/** The values' range padded a little in log space, at least a decade wide. */
function paddedDomain(values: readonly number[]): [number, number] {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return [1e3, 1e6];
  let l0 = Math.log10(Math.min(...positive));
  let l1 = Math.log10(Math.max(...positive));
  if (l1 - l0 < 1) {
    const mid = (l0 + l1) / 2;
    l0 = mid - 0.5;
    l1 = mid + 0.5;
  }
  const pad = (l1 - l0) * 0.07;
  return [10 ** (l0 - pad), 10 ** (l1 + pad)];
}

interface Tick {
  readonly value: number;
  readonly major: boolean;
  readonly label: string | undefined;
}

/** Decades labelled; 2× and 5× labelled too when the axis is short on decades. */
function logTicks(lo: number, hi: number, label: (v: number) => string, labelMinor: boolean): Tick[] {
  const ticks: Tick[] = [];
  for (let e = Math.floor(Math.log10(lo)) ; e <= Math.ceil(Math.log10(hi)); e++) {
    for (let m = 1; m <= 9; m++) {
      const value = m * 10 ** e;
      if (value < lo * (1 - 1e-9) || value > hi * (1 + 1e-9)) continue;
      const major = m === 1;
      const shown = major || (labelMinor && (m === 2 || m === 5));
      ticks.push({ value, major, label: shown ? label(value) : undefined });
    }
  }
  return ticks;
}

// ---------------------------------------------------------------- label placement

interface Box {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

type Segment = readonly [number, number, number, number];

function overlaps(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/** Whether a segment crosses a box (Liang–Barsky clipping). */
function crosses(box: Box, [x0, y0, x1, y1]: Segment): boolean {
  let t0 = 0;
  let t1 = 1;
  const dx = x1 - x0;
  const dy = y1 - y0;
  const edges: [number, number][] = [
    [-dx, x0 - box.x0],
    [dx, box.x1 - x0],
    [-dy, y0 - box.y0],
    [dy, box.y1 - y0],
  ];
  for (const [p, q] of edges) {
    if (p === 0) {
      if (q < 0) return false;
      continue;
    }
    const t = q / p;
    if (p < 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    if (t0 > t1) return false;
  }
  return true;
}

// ---------------------------------------------------------------- drawing

function colourOf(server: string, servers: readonly string[]): string {
  return COLOURS[server] ?? SPARE_COLOURS[Math.max(0, servers.indexOf(server)) % SPARE_COLOURS.length]!;
}

function text(x: number, y: number, content: string, attrs: string): string {
  return `<text x="${num(x)}" y="${num(y)}" ${attrs}>${escapeXml(content)}</text>`;
}

function path(points: readonly (readonly [number, number])[]): string {
  return points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${num(x)},${num(y)}`).join(' ');
}

interface PanelGeometry {
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

const RATE_SIZE = 10;

function drawPanel(panel: Panel, g: PanelGeometry, y: LogScale, servers: readonly string[], firstPanel: boolean): string[] {
  const out: string[] = [];
  const points = panel.series.flatMap((s) => s.points);
  const [xLo, xHi] = paddedDomain(points.map((p) => p.x));
  const x = logScale(xLo, xHi, g.left, g.right);
  const decadesX = Math.log10(xHi / xLo);
  const decadesY = Math.log10(y.hi / y.lo);
  const yOf = (ms: number): number => y.at(ms > 0 ? ms : y.lo);

  // Panel title.
  const subs = panel.subscribers;
  const title = `${compactCount(subs)} ${subs === 1 ? 'subscriber' : 'subscribers'}`;
  out.push(text(g.left, g.top - 12, title, `font-size="15" font-weight="600" fill="${INK}"`));

  // Grid and ticks.
  out.push(`<rect x="${num(g.left)}" y="${num(g.top)}" width="${num(g.right - g.left)}" height="${num(g.bottom - g.top)}" fill="#fbfcfd"/>`);
  const xTicks = logTicks(xLo, xHi, compactCount, decadesX <= 2.2);
  const yTicks = logTicks(y.lo, y.hi, latencyTick, decadesY <= 1.2);
  for (const tick of yTicks) {
    const py = y.at(tick.value);
    out.push(`<line x1="${num(g.left)}" x2="${num(g.right)}" y1="${num(py)}" y2="${num(py)}" stroke="${tick.major ? GRID : GRID_MINOR}" stroke-width="1"/>`);
    if (tick.label !== undefined) {
      out.push(text(g.left - 8, py + 4, tick.label, `font-size="12" text-anchor="end" fill="${tick.major ? MUTED : FAINT}"`));
    }
  }
  for (const tick of xTicks) {
    const px = x.at(tick.value);
    out.push(`<line x1="${num(px)}" x2="${num(px)}" y1="${num(g.top)}" y2="${num(g.bottom)}" stroke="${tick.major ? GRID : GRID_MINOR}" stroke-width="1"/>`);
    out.push(`<line x1="${num(px)}" x2="${num(px)}" y1="${num(g.bottom)}" y2="${num(g.bottom + (tick.major ? 5 : 3))}" stroke="${AXIS}" stroke-width="1"/>`);
    if (tick.label !== undefined) {
      out.push(text(px, g.bottom + 19, tick.label, `font-size="12" text-anchor="middle" fill="${tick.major ? MUTED : FAINT}"`));
    }
  }
  out.push(`<path d="M${num(g.left)},${num(g.top)} V${num(g.bottom)} H${num(g.right)}" fill="none" stroke="${AXIS}" stroke-width="1"/>`);
  out.push(text((g.left + g.right) / 2, g.bottom + 40, 'delivered events per second (log scale)', `font-size="12" text-anchor="middle" fill="${MUTED}"`));
  if (firstPanel) {
    const cy = (g.top + g.bottom) / 2;
    out.push(`<text x="0" y="0" transform="translate(${num(g.left - 54)},${num(cy)}) rotate(-90)" font-size="12" text-anchor="middle" fill="${MUTED}">latency, ms (log scale)</text>`);
  }

  if (points.length === 0) {
    out.push(text((g.left + g.right) / 2, (g.top + g.bottom) / 2, 'no latency data', `font-size="13" text-anchor="middle" fill="${FAINT}"`));
    return out;
  }

  // Series: whiskers, p50 dashed, p99 solid, dots.
  const segments: Segment[] = [];
  const dots: Box[] = [];
  const whiskers: string[] = [];
  const p50Lines: string[] = [];
  const p99Lines: string[] = [];
  const dotMarks: string[] = [];
  for (const series of panel.series) {
    const colour = colourOf(series.server, servers);
    for (const p of series.points) {
      if (Number.isFinite(p.p99Min) && Number.isFinite(p.p99Max) && p.p99Max > p.p99Min * 1.0001) {
        const px = x.at(p.x);
        const [ya, yb] = [yOf(p.p99Min), yOf(p.p99Max)];
        if (Math.abs(ya - yb) >= 1) {
          whiskers.push(
            `<path d="M${num(px)},${num(ya)} V${num(yb)} M${num(px - 3)},${num(ya)} H${num(px + 3)} M${num(px - 3)},${num(yb)} H${num(px + 3)}" stroke="${colour}" stroke-width="1.1" stroke-opacity="0.75" fill="none"/>`,
          );
          segments.push([px, ya, px, yb]);
        }
      }
    }
    const p50 = series.points.filter((p) => Number.isFinite(p.p50)).map((p) => [x.at(p.x), yOf(p.p50)] as const);
    if (p50.length > 1) {
      p50Lines.push(`<path d="${path(p50)}" fill="none" stroke="${colour}" stroke-width="1.4" stroke-dasharray="5 4" stroke-opacity="0.85" stroke-linejoin="round"/>`);
    } else if (p50.length === 1) {
      const [px, py] = p50[0]!;
      p50Lines.push(`<path d="M${num(px - 7)},${num(py)} H${num(px + 7)}" stroke="${colour}" stroke-width="1.4" stroke-dasharray="3 2"/>`);
    }
    for (let i = 1; i < p50.length; i++) segments.push([p50[i - 1]![0], p50[i - 1]![1], p50[i]![0], p50[i]![1]]);
    const p99Points = series.points.filter((p) => Number.isFinite(p.p99));
    const p99 = p99Points.map((p) => [x.at(p.x), yOf(p.p99)] as const);
    if (p99.length > 1) {
      p99Lines.push(`<path d="${path(p99)}" fill="none" stroke="${colour}" stroke-width="2.4" stroke-linejoin="round" stroke-linecap="round"/>`);
    }
    for (let i = 1; i < p99.length; i++) segments.push([p99[i - 1]![0], p99[i - 1]![1], p99[i]![0], p99[i]![1]]);
    p99Points.forEach((p, i) => {
      const [px, py] = p99[i]!;
      dots.push({ x0: px - 5, y0: py - 5, x1: px + 5, y1: py + 5 });
      dotMarks.push(
        p.lost
          ? `<circle cx="${num(px)}" cy="${num(py)}" r="4" fill="#fff" stroke="${colour}" stroke-width="2"/>`
          : `<circle cx="${num(px)}" cy="${num(py)}" r="4.2" fill="${colour}" stroke="#fff" stroke-width="1.5"/>`,
      );
    });
  }
  out.push(...whiskers, ...p50Lines, ...p99Lines, ...dotMarks);

  // Publish-rate labels beside the p99 dots, placed where they collide least; a stack of dots at one rate shares one.
  const bounds: Box = { x0: g.left + 2, y0: g.top + 2, x1: g.right - 2, y1: g.bottom - 2 };
  const placed: Box[] = [];
  const labelledRates = new Set<number>();
  /** Dots already labelled, by rate: a column of dots at one rate shares one label. */
  const labelledAt: { rate: number; px: number }[] = [];
  const labels: string[] = [];
  const candidates = panel.series.flatMap((s) =>
    s.points.filter((p) => Number.isFinite(p.p99) && p.rate !== undefined && Number.isFinite(p.rate)).map((p) => ({ p, px: x.at(p.x), py: yOf(p.p99) })),
  );
  // Highest dots first: they have the most room above, and label their column.
  candidates.sort((a, b) => a.py - b.py);
  for (const { p, px, py } of candidates) {
    if (labelledAt.some((l) => l.rate === p.rate && Math.abs(l.px - px) < 24)) continue;
    const label = rateLabel(p.rate!);
    const w = textWidth(label, RATE_SIZE) * 0.9;
    const h = RATE_SIZE + 2;
    const spots: { box: Box; anchor: 'start' | 'middle' | 'end' }[] = [
      { box: { x0: px + 7, y0: py - h - 2, x1: px + 7 + w, y1: py - 2 }, anchor: 'start' },
      { box: { x0: px - w / 2, y0: py - 8 - h, x1: px + w / 2, y1: py - 8 }, anchor: 'middle' },
      { box: { x0: px + 8, y0: py - h / 2, x1: px + 8 + w, y1: py + h / 2 }, anchor: 'start' },
      { box: { x0: px + 7, y0: py + 2, x1: px + 7 + w, y1: py + 2 + h }, anchor: 'start' },
      { box: { x0: px - w / 2, y0: py + 8, x1: px + w / 2, y1: py + 8 + h }, anchor: 'middle' },
      { box: { x0: px - 7 - w, y0: py - h - 2, x1: px - 7, y1: py - 2 }, anchor: 'end' },
      { box: { x0: px - 8 - w, y0: py - h / 2, x1: px - 8, y1: py + h / 2 }, anchor: 'end' },
      { box: { x0: px - 7 - w, y0: py + 2, x1: px - 7, y1: py + 2 + h }, anchor: 'end' },
    ];
    let best: { box: Box; anchor: string } | undefined;
    let bestScore = Infinity;
    for (const spot of spots) {
      const b = spot.box;
      const outside = b.x0 < bounds.x0 || b.x1 > bounds.x1 || b.y0 < bounds.y0 || b.y1 > bounds.y1;
      const hard = (outside ? 1 : 0) + placed.filter((o) => overlaps(b, o)).length + dots.filter((o) => overlaps(b, o)).length;
      const soft = segments.filter((s) => crosses(b, s)).length;
      const score = hard * 100 + soft;
      if (score < bestScore) {
        bestScore = score;
        best = spot;
      }
    }
    if (!best) continue;
    // A crowded label is dropped when another point at the same rate already says it.
    if (bestScore >= 100 && labelledRates.has(p.rate!)) continue;
    placed.push(best.box);
    labelledRates.add(p.rate!);
    labelledAt.push({ rate: p.rate!, px });
    const tx = best.anchor === 'start' ? best.box.x0 : best.anchor === 'end' ? best.box.x1 : (best.box.x0 + best.box.x1) / 2;
    labels.push(
      text(tx, best.box.y1 - 2, label, `font-size="${RATE_SIZE}" text-anchor="${best.anchor}" fill="${FAINT}" stroke="#fbfcfd" stroke-width="3" stroke-linejoin="round" paint-order="stroke"`),
    );
  }
  out.push(...labels);
  return out;
}

interface LegendItem {
  readonly glyph: (x: number, y: number) => string;
  readonly glyphWidth: number;
  readonly label: string;
}

function drawLegend(items: readonly LegendItem[], left: number, right: number, y: number): string[] {
  const out: string[] = [];
  const widths = items.map((item) => item.glyphWidth + 6 + textWidth(item.label, 12) * 0.88);
  const gap = 20;
  let cx = left;
  let cy = y;
  items.forEach((item, i) => {
    const w = widths[i]!;
    if (cx > left && cx + w > right) {
      cx = left;
      cy += 20;
    }
    out.push(item.glyph(cx, cy));
    out.push(text(cx + item.glyphWidth + 6, cy + 4, item.label, `font-size="12" fill="${INK}"`));
    cx += w + gap;
  });
  return out;
}

/** The chart, as a standalone SVG document. */
export function latencyPlotSvg(report: BenchReport): string {
  const panels = panelsOf(report);
  const servers = orderServers(panels.flatMap((p) => p.series.map((s) => s.server)));
  const panelCount = Math.max(1, panels.length);
  const width = Math.max(MIN_WIDTH, MARGIN_LEFT + MARGIN_RIGHT + panelCount * PANEL_WIDTH + (panelCount - 1) * PANEL_GAP);
  const panelWidth = (width - MARGIN_LEFT - MARGIN_RIGHT - (panelCount - 1) * PANEL_GAP) / panelCount;

  const allPoints = panels.flatMap((p) => p.series.flatMap((s) => s.points));
  const latencies = allPoints.flatMap((p) => [p.p99, p.p50, p.p99Min, p.p99Max]);
  const [yLo, yHi] = decadeDomain(latencies);
  const y = logScale(yLo, yHi, PLOT_BOTTOM, PLOT_TOP);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${HEIGHT}" viewBox="0 0 ${width} ${HEIGHT}" font-family="${escapeXml(FONT)}">`,
  );
  const title = 'Publish-to-receive latency vs load (lower is better)';
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(text(MARGIN_LEFT, TITLE_Y, title, `font-size="20" font-weight="650" fill="${INK}"`));

  const runCounts = [...new Set(allPoints.map((p) => p.runs))];
  const mostRuns = Math.max(0, ...runCounts);
  const runNote = mostRuns <= 1 ? 'one run' : runCounts.length === 1 ? `median of ${mostRuns} runs` : `median of up to ${mostRuns} runs`;
  if (panels.length > 0) {
    out.push(text(MARGIN_LEFT, SUBTITLE_Y, `Fanout to one topic. Each point: ${runNote}; small labels: publish rate into the hub.`, `font-size="12.5" fill="${MUTED}"`));
  }

  const legend: LegendItem[] = servers.map((server) => {
    const colour = colourOf(server, servers);
    return {
      glyphWidth: 26,
      label: server,
      glyph: (gx: number, gy: number) =>
        `<path d="M${num(gx)},${num(gy)} H${num(gx + 26)}" stroke="${colour}" stroke-width="2.4"/><circle cx="${num(gx + 13)}" cy="${num(gy)}" r="4.2" fill="${colour}" stroke="#fff" stroke-width="1.5"/>`,
    };
  });
  legend.push(
    {
      glyphWidth: 26,
      label: 'p99',
      glyph: (gx, gy) => `<path d="M${num(gx)},${num(gy)} H${num(gx + 26)}" stroke="${MUTED}" stroke-width="2.4"/>`,
    },
    {
      glyphWidth: 26,
      label: 'p50',
      glyph: (gx, gy) => `<path d="M${num(gx)},${num(gy)} H${num(gx + 26)}" stroke="${MUTED}" stroke-width="1.4" stroke-dasharray="5 4"/>`,
    },
    {
      glyphWidth: 8,
      label: 'p99 min–max over runs',
      glyph: (gx, gy) =>
        `<path d="M${num(gx + 4)},${num(gy - 7)} V${num(gy + 7)} M${num(gx + 1)},${num(gy - 7)} H${num(gx + 7)} M${num(gx + 1)},${num(gy + 7)} H${num(gx + 7)}" stroke="${MUTED}" stroke-width="1.1" fill="none"/>`,
    },
  );
  if (allPoints.some((p) => p.lost && Number.isFinite(p.p99))) {
    legend.push({
      glyphWidth: 10,
      label: 'open dot: events lost',
      glyph: (gx, gy) => `<circle cx="${num(gx + 5)}" cy="${num(gy)}" r="4" fill="#fff" stroke="${MUTED}" stroke-width="2"/>`,
    });
  }
  if (panels.length > 0) out.push(...drawLegend(legend, MARGIN_LEFT, width - MARGIN_RIGHT, LEGEND_Y));

  if (panels.length === 0) {
    out.push(
      text(width / 2, (PLOT_TOP + PLOT_BOTTOM) / 2, 'No fanout results in this report.', `font-size="15" text-anchor="middle" fill="${FAINT}"`),
    );
  }
  panels.forEach((panel, i) => {
    const left = MARGIN_LEFT + i * (panelWidth + PANEL_GAP);
    out.push(`<g>`, ...drawPanel(panel, { left, right: left + panelWidth, top: PLOT_TOP, bottom: PLOT_BOTTOM }, y, servers, i === 0), `</g>`);
  });

  const machine = report.machine;
  const parts = [
    dateLabel(report.date),
    machine?.cpu ? `${String(machine.cpu).trim()}${Number.isFinite(machine.cores) ? ` (${machine.cores} cores)` : ''}` : undefined,
    machine?.node ? `Node ${String(machine.node).replace(/^v?/, 'v')}` : undefined,
  ].filter((part): part is string => Boolean(part));
  let footer = parts.join('  ·  ');
  const maxChars = Math.floor((width - MARGIN_LEFT - MARGIN_RIGHT) / (11 * 0.56));
  if (footer.length > maxChars) footer = `${footer.slice(0, maxChars - 1)}…`;
  out.push(text(MARGIN_LEFT, FOOTER_Y, footer, `font-size="11" fill="${FAINT}"`));

  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
