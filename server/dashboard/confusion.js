// confusion.js - the confusion matrix of one step as a heatmap: rows are the ground truth,
// normalised to 1 (the colour is the share of the row's pixels), columns the prediction, the
// counts on hover. A row with no pixels is a class absent at that step, and says so.
import { h, s, isNum, fmtInt, fmtPct, vocColor, showTip, hideTip, tipRow } from './util.js';

export function renderConfusion(host, matrix, names, step) {
  host.textContent = '';
  const n = Array.isArray(matrix) ? matrix.length : 0;
  if (!n) {
    host.append(h('p', { class: 'nodata-p', text: 'No confusion matrix for this step.' }));
    return;
  }
  const label = (i) => (names && names[i] != null ? String(names[i]) : `class ${i}`);
  const W = Math.max(280, Math.min(host.clientWidth || 600, 760));
  const labelW = Math.min(W < 520 ? 80 : 140, Math.max(48, Math.max(...[...Array(n).keys()].map((i) => label(i).length)) * 7 + 12));
  const top = 28;
  const cell = Math.max(6, Math.min(40, Math.floor((W - labelW - 8) / n)));
  const H = top + n * cell + 4;
  const svg = s('svg', {
    class: 'heat-svg',
    width: labelW + n * cell + 8,
    height: H,
    viewBox: `0 0 ${labelW + n * cell + 8} ${H}`,
    role: 'img',
    'aria-label': `confusion matrix at step ${step}`,
    'data-chart': 'confusion',
  });
  host.append(svg);
  s('text', { x: labelW, y: 12, class: 'tick', text: 'predicted →' }, svg);
  s('text', { x: 2, y: 12, class: 'tick', text: 'truth ↓' }, svg);
  const short = (t, max) => (t.length > max ? t.slice(0, max - 1) + '…' : t);
  const maxChars = Math.floor((labelW - 10) / 7);
  for (let r = 0; r < n; r++) {
    const row = matrix[r] || [];
    const total = row.reduce((a, b) => a + (isNum(b) ? b : 0), 0);
    const y = top + r * cell;
    const g = s('g', { class: total ? 'hrow' : 'hrow absent', 'data-row': r }, svg);
    s('rect', { x: 2, y: y + cell / 2 - 4, width: 8, height: 8, rx: 1.5, fill: vocColor(r), class: 'swatch' }, g);
    s('text', {
      x: 14,
      y: y + cell / 2 + 4,
      class: 'cls',
      text: short(label(r), maxChars) + (total ? '' : ' (absent)'),
    }, g);
    for (let c = 0; c < n; c++) {
      const count = isNum(row[c]) ? row[c] : 0;
      const share = total ? count / total : 0;
      const rect = s('rect', {
        x: labelW + c * cell,
        y,
        width: cell - 1,
        height: cell - 1,
        class: r === c ? 'cell diag' : 'cell',
        'data-row': r,
        'data-col': c,
        'data-count': count,
        'data-share': share.toFixed(6),
        style: `fill-opacity:${total ? 0.06 + 0.94 * share : 0}`,
      }, g);
      if (cell >= 30 && total && share >= 0.005)
        s('text', {
          x: labelW + c * cell + cell / 2,
          y: y + cell / 2 + 4,
          'text-anchor': 'middle',
          class: share > 0.55 ? 'cell-val on' : 'cell-val',
          text: Math.round(share * 100),
        }, g);
      rect.addEventListener('pointermove', (ev) =>
        showTip(
          ev,
          h(
            'div',
            null,
            h('div', { class: 'tt-head', text: `${label(r)} → ${label(c)}` }),
            tipRow(null, 'pixels', fmtInt(count)),
            tipRow(null, 'share of the row', total ? fmtPct(share, 2) : '—'),
            total ? null : h('div', { class: 'tt-dim', text: `${label(r)} is absent at this step` }),
          ),
        ),
      );
      rect.addEventListener('pointerleave', hideTip);
    }
  }
  if (n <= 30)
    for (let c = 0; c < n; c++)
      s('text', {
        x: labelW + c * cell + cell / 2,
        y: top - 4,
        'text-anchor': 'middle',
        class: 'tick',
        text: cell >= 24 ? short(label(c), Math.floor(cell / 6)) : String(c),
      }, svg);
  host.append(h('p', { class: 'hint heat-note', text: 'colour: share of the row (each row sums to 100%) · hover a cell for its pixel count' }));
}
