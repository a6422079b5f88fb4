// classes.js - the per-class Dice and IoU bars of one step. A class with no ground-truth
// pixels at that step is drawn as absent (its scores say nothing about it), not as a 0.
import { $, h, s, isNum, fmtInt, fmtPct, fmtStep, vocColor, showTip, hideTip } from './util.js';

// Class indices with no ground-truth pixels in a step's per_class.support.
export function absentClasses(pc) {
  const sup = (pc && pc.support) || [];
  return sup.map((v, i) => (v === 0 ? i : -1)).filter((i) => i >= 0);
}

// ---- per-class bars -----------------------------------------------------------------------
export function renderClasses(sp, sortMode) {
  const host = $('class-plot');
  const legend = $('class-legend');
  legend.textContent = '';
  legend.append(
    h('span', { class: 'lg static' }, h('i', { style: 'background:var(--c-dice)' }), 'Dice'),
    h('span', { class: 'lg static' }, h('i', { style: 'background:var(--c-iou)' }), 'IoU'),
    h('span', { class: 'lg static' }, h('i', { class: 'dashed' }), 'mean'),
  );
  host.textContent = '';
  const pc = (sp && sp.per_class) || {};
  const dice = pc.dice || [],
    iou = pc.iou || [];
  const n = Math.max(dice.length, iou.length, 0);
  // a class with no ground-truth pixels in this step: its scores say nothing
  const absent = (i) => Array.isArray(pc.support) && pc.support[i] === 0;
  const nAbsent = [...Array(n).keys()].filter(absent).length;
  $('class-sub').textContent = sp
    ? `at step ${fmtStep(sp.step)} · ${n} classes` +
      (nAbsent ? ` · ${nAbsent} absent` : '')
    : '';
  if (!n) {
    host.append(h('p', { class: 'nodata-p', text: 'No per-class values for this step.' }));
    return;
  }
  const names = sp.class_names || [];
  const label = (i) => (names[i] != null ? String(names[i]) : `class ${i}`);
  let order = [...Array(n).keys()];
  if (sortMode === 'worst') {
    const key = (i) =>
      absent(i) ? Infinity : isNum(dice[i]) ? dice[i] : isNum(iou[i]) ? iou[i] : Infinity;
    order.sort((a, b) => key(a) - key(b) || a - b);
  }
  const W = Math.max(300, host.clientWidth || 600);
  const rowH = n > 40 ? 18 : 26;
  const barH = n > 40 ? 6 : 9;
  const longest = Math.max(...order.map((i) => label(i).length));
  const narrow = W < 520;
  const labelW = Math.min(narrow ? 104 : 190, Math.max(64, longest * 7.2 + 30));
  const maxChars = Math.floor((labelW - 26) / 7.2);
  const short = (s) => (s.length > maxChars ? s.slice(0, maxChars - 1) + '…' : s);
  const top = 24,
    valW = narrow ? 46 : 56;
  const pw = W - labelW - valW - 8;
  const H = top + n * rowH + 6;
  const X = (v) => labelW + Math.max(0, Math.min(1, v)) * pw;
  const svg = s('svg', {
    class: 'bars-svg',
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': 'per-class Dice and IoU',
    'data-chart': 'classes',
  });
  host.append(svg);
  const grid = s('g', { class: 'grid' }, svg);
  for (const v of narrow ? [0, 0.5, 1] : [0, 0.25, 0.5, 0.75, 1]) {
    s('line', { x1: X(v), x2: X(v), y1: top - 4, y2: H - 4 }, grid);
    s(
      'text',
      { x: X(v), y: top - 10, 'text-anchor': 'middle', class: 'tick', text: `${v * 100}%` },
      grid,
    );
  }
  if (!narrow)
    s('text', { x: W - 6, y: top - 10, 'text-anchor': 'end', class: 'tick', text: 'Dice' }, grid);
  const m = (sp && sp.metrics) || {};
  const rows = s('g', null, svg);
  order.forEach((ci, r) => {
    const y = top + r * rowH;
    const gone = absent(ci);
    const g = s('g', { class: gone ? 'row absent' : 'row', 'data-class': ci }, rows);
    s('rect', { x: 0, y, width: W, height: rowH, class: 'row-bg' }, g);
    s(
      'rect',
      {
        x: 4,
        y: y + rowH / 2 - 5,
        width: 10,
        height: 10,
        rx: 2,
        fill: vocColor(ci),
        class: 'swatch',
      },
      g,
    );
    s('text', { x: 20, y: y + rowH / 2 + 4, class: 'cls', text: short(label(ci)) }, g);
    const bars = [
      [dice[ci], 'dice', 'var(--c-dice)'],
      [iou[ci], 'iou', 'var(--c-iou)'],
    ];
    if (gone) {
      s(
        'text',
        {
          x: X(0) + 6,
          y: y + rowH / 2 + 4,
          class: 'absent-note',
          text: 'absent: no ground-truth pixels at this step',
        },
        g,
      );
    }
    bars.forEach(([v, kind, color], k) => {
      if (gone) return;
      const by = y + (rowH - 2 * barH - 2) / 2 + k * (barH + 2);
      if (isNum(v)) {
        s(
          'rect',
          {
            x: X(0),
            y: by,
            width: Math.max(0.5, X(v) - X(0)),
            height: barH,
            rx: 2,
            fill: color,
            class: `bar ${kind}`,
            'data-class': ci,
            'data-value': v,
          },
          g,
        );
      } else {
        s('rect', { x: X(0), y: by, width: pw, height: barH, rx: 2, class: 'bar-null' }, g);
      }
    });
    const dv = isNum(dice[ci]) ? dice[ci] : iou[ci];
    const worst = !gone && isNum(dv) && dv < 0.5 * (isNum(m.mean_dice) ? m.mean_dice : 1);
    s(
      'text',
      {
        x: W - 6,
        y: y + rowH / 2 + 4,
        'text-anchor': 'end',
        class: 'val' + (worst ? ' low' : ''),
        text: gone
          ? '—'
          : isNum(dice[ci])
            ? fmtPct(dice[ci])
            : isNum(iou[ci])
              ? fmtPct(iou[ci])
              : 'n/a',
      },
      g,
    );
    g.addEventListener('pointermove', (ev) => {
      const pick = (k) => (pc[k] && pc[k][ci] !== undefined ? pc[k][ci] : undefined);
      const extra = [
        ['precision', pick('precision'), true],
        ['recall', pick('recall'), true],
        ['support', pick('support'), false],
      ].filter(([, v]) => v !== undefined);
      showTip(
        ev,
        h(
          'div',
          null,
          h(
            'div',
            { class: 'tt-head' },
            h('i', { class: 'sw', style: `background:${vocColor(ci)}` }),
            `${label(ci)}`,
            h('span', { class: 'tt-dim', text: ` #${ci}` }),
          ),
          h(
            'div',
            { class: 'tt-row' },
            h('i', { style: 'background:var(--c-dice)' }),
            h('span', { text: 'Dice' }),
            h('b', { text: fmtPct(dice[ci], 2) }),
          ),
          h(
            'div',
            { class: 'tt-row' },
            h('i', { style: 'background:var(--c-iou)' }),
            h('span', { text: 'IoU' }),
            h('b', { text: fmtPct(iou[ci], 2) }),
          ),
          ...extra.map(([k, v, pct]) =>
            h(
              'div',
              { class: 'tt-row' },
              h('i', { class: 'blank' }),
              h('span', { text: k }),
              h('b', { text: pct ? fmtPct(v, 2) : isNum(v) ? fmtInt(v) : '—' }),
            ),
          ),
          gone || (!isNum(dice[ci]) && !isNum(iou[ci]))
            ? h('div', {
                class: 'tt-dim',
                text: 'no ground-truth pixels of this class at this step',
              })
            : null,
        ),
      );
    });
    g.addEventListener('pointerleave', hideTip);
  });
  // means
  const means = [
    [m.mean_dice, 'var(--c-dice)', 'mean Dice'],
    [m.miou, 'var(--c-iou)', 'mIoU'],
  ];
  for (const [v, color, name] of means) {
    if (!isNum(v)) continue;
    const line = s(
      'line',
      { x1: X(v), x2: X(v), y1: top - 2, y2: H - 4, stroke: color, class: 'mean' },
      svg,
    );
    s('title', { text: `${name} ${fmtPct(v, 2)}` }, line);
  }
}

