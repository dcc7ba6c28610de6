// Small SVG line charts of the last minutes of a stream's figures (one point per heartbeat).

const SVG = 'http://www.w3.org/2000/svg';

/** `series`: [{ values: number[], cls }]; one shared scale from 0 to the largest value (at least `floor`). */
export function sparkline(svg, series, opts = {}) {
  const w = opts.width ?? 120;
  const h = opts.height ?? 26;
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const max = Math.max(opts.floor ?? 1, ...series.flatMap((s) => s.values.filter(Number.isFinite)));
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.replaceChildren();
  for (const s of series) {
    if (!s.values.length) continue;
    const off = n - s.values.length;
    const pts = s.values.map((v, i) => `${(((off + i) / (n - 1)) * (w - 2) + 1).toFixed(1)},${(h - 1 - (Math.max(0, v) / max) * (h - 3)).toFixed(1)}`);
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', pts.join(' '));
    line.setAttribute('class', s.cls);
    svg.appendChild(line);
  }
  const t = document.createElementNS(SVG, 'title');
  t.textContent = `max ${max.toFixed(1)}${opts.unit ?? ''} over the last ${n} samples`;
  svg.appendChild(t);
}
