/**
 * The benchmark report's pictures as plain SVG text: line charts with labelled axes, a log or
 * linear scale on either, and a legend. No dependency: a chart is a few polylines, and a file
 * any browser and GitHub show as is.
 */

export interface Series {
  name: string;
  points: [number, number][];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** A horizontal line (a target), with its label. */
  yMark?: { value: number; label: string };
}

const WIDTH = 780;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 240, top: 40, bottom: 50 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Tick values: powers of ten (and 2×, 5×) on a log scale, round steps on a linear one. */
function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min && v <= max) out.push(v);
      }
    }
    return out;
  }
  const raw = (max - min) / 6;
  const step = [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw || 1))).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

const label = (v: number): string => (Math.abs(v) >= 1000 ? `${v / 1000}k` : String(v));

/** One chart as an SVG document. Points that a log scale cannot show (≤ 0) are left out. */
export function lineChart(series: Series[], o: ChartOptions): string {
  const usable = series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => (!o.xLog || x > 0) && (!o.yLog || y > 0) && Number.isFinite(x) && Number.isFinite(y)) }));
  const all = usable.flatMap((s) => s.points);
  const ys = [...all.map(([, y]) => y), ...(o.yMark ? [o.yMark.value] : [])];
  const xs = all.map(([x]) => x);
  const range = (v: number[], log: boolean): [number, number] => {
    let lo = Math.min(...v);
    let hi = Math.max(...v);
    if (!Number.isFinite(lo)) return [log ? 1 : 0, 1];
    if (!log) lo = Math.min(0, lo);
    if (hi === lo) hi = lo + 1;
    return log ? [lo / 1.2, hi * 1.2] : [lo, hi * 1.05];
  };
  const [x0, x1] = range(xs, o.xLog ?? false);
  const [y0, y1] = range(ys, o.yLog ?? false);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const scale = (v: number, lo: number, hi: number, log: boolean): number => (log ? (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) : (v - lo) / (hi - lo));
  const px = (x: number): number => MARGIN.left + scale(x, x0, x1, o.xLog ?? false) * plotW;
  const py = (y: number): number => MARGIN.top + plotH - scale(y, y0, y1, o.yLog ?? false) * plotH;
  const f = (n: number): string => n.toFixed(1);

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escape(o.title)}</text>`,
  ];
  for (const t of ticks(x0, x1, o.xLog ?? false)) {
    parts.push(`<line x1="${f(px(t))}" y1="${MARGIN.top}" x2="${f(px(t))}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`);
    parts.push(`<text x="${f(px(t))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of ticks(y0, y1, o.yLog ?? false)) {
    parts.push(`<line x1="${MARGIN.left}" y1="${f(py(t))}" x2="${MARGIN.left + plotW}" y2="${f(py(t))}" stroke="#eee"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${f(py(t) + 4)}" text-anchor="end">${label(t)}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escape(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escape(o.yLabel)}</text>`);
  if (o.yMark) {
    const y = f(py(o.yMark.value));
    parts.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="#999" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${MARGIN.left + plotW - 4}" y="${Number(y) - 5}" text-anchor="end" fill="#666">${escape(o.yMark.label)}</text>`);
  }
  usable.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] as string;
    if (s.points.length > 0) {
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${s.points.map(([x, y]) => `${f(px(x))},${f(py(y))}`).join(' ')}"/>`);
      for (const [x, y] of s.points.length <= 20 ? s.points : []) parts.push(`<circle cx="${f(px(x))}" cy="${f(py(y))}" r="3" fill="${colour}"/>`);
    }
    const ly = MARGIN.top + 14 + i * 20;
    parts.push(`<line x1="${WIDTH - MARGIN.right + 12}" y1="${ly - 4}" x2="${WIDTH - MARGIN.right + 36}" y2="${ly - 4}" stroke="${colour}" stroke-width="3"/>`);
    parts.push(`<text x="${WIDTH - MARGIN.right + 42}" y="${ly}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
