// kpis.js - the headline of the run shown: its step, mIoU, mean Dice, total loss and pixel
// accuracy, and what those numbers do with the classes absent at that step, said out loud.
import { $, h, s, isNum, fmtInt, fmtNum, fmtPct, plural, ago } from './util.js';
import { pathD } from './series.js';
import { absentClasses } from './classes.js';

function lastTwo(series, key) {
  const pts = series[key] || [];
  const out = [];
  for (let i = pts.length - 1; i >= 0 && out.length < 2; i--) if (isNum(pts[i].value)) out.push(pts[i]);
  return out;
}

function sparkline(series, key, color) {
  const pts = series[key] || [];
  const W = 120,
    H = 30;
  const svg = s('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  if (pts.length < 2) return svg;
  const x0 = pts[0].step,
    x1 = pts[pts.length - 1].step;
  const X = (x) => ((x - x0) / (x1 - x0 || 1)) * (W - 4) + 2;
  const step = (p) => p.step;
  // a sparkline needs no exact extremes: every k-th point (and the last) is enough
  const stride = Math.max(1, Math.floor(pts.length / (2 * W)));
  const few = [];
  for (let i = 0; i < pts.length; i += stride) few.push(pts[i]);
  if (few[few.length - 1] !== pts[pts.length - 1]) few.push(pts[pts.length - 1]);
  let lo = Infinity,
    hi = -Infinity,
    n = 0;
  for (const p of few)
    if (isNum(p.value)) {
      n++;
      lo = Math.min(lo, p.value);
      hi = Math.max(hi, p.value);
    }
  if (n < 2) return svg;
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const Y = (y) => H - 3 - ((y - lo) / (hi - lo)) * (H - 6);
  s('path', {
    d: pathD(few, X, Y, step),
    stroke: color,
    fill: 'none',
    'stroke-width': 1.6,
    'vector-effect': 'non-scaling-stroke',
  }, svg);
  return svg;
}

function stepMeta(sp) {
  if (isNum(sp.evaluations) && isNum(sp.batches))
    return `${plural(sp.evaluations, 'eval')} · ${plural(sp.batches, 'image')} · `;
  if (isNum(sp.batches)) return `${sp.batches} batch${sp.batches === 1 ? '' : 'es'} · `;
  return '';
}

// What the headline numbers do with classes absent at this step, said out loud.
function absentNote(sp) {
  const pc = sp.per_class || {};
  const gone = absentClasses(pc);
  const box = $('absent-note');
  box.textContent = '';
  box.hidden = !gone.length;
  if (!gone.length) return;
  const names = sp.class_names || [];
  const label = (i) => (names[i] != null ? String(names[i]) : `class ${i}`);
  const present = (pc.iou || []).map((v, i) => [v, i]).filter(([v, i]) => !gone.includes(i) && isNum(v));
  const mean = present.length ? present.reduce((a, [v]) => a + v, 0) / present.length : null;
  const list = gone.slice(0, 6).map(label).join(', ') + (gone.length > 6 ? ', …' : '');
  const seed = sp.semantics !== 'standard';
  box.append(
    h('b', { text: `${plural(gone.length, 'class')} absent at this step` }),
    ` (${list}: no ground-truth pixels). `,
    seed
      ? `Seed semantics count ${gone.length === 1 ? 'it' : 'them'} as 0 in mIoU and mean Dice` +
          (isNum(mean) ? `; mIoU over the ${present.length} present classes is ${fmtPct(mean)}.` : '.')
      : `Standard semantics leave ${gone.length === 1 ? 'it' : 'them'} out of mIoU.`,
  );
  box.dataset.semantics = seed ? 'seed' : 'standard';
}

// The step and the headline numbers of the run shown, with their change since the step
// before and a sparkline; series is the run's history (key -> points).
export function renderKpis(sp, series) {
  const box = $('kpis');
  box.textContent = '';
  if (!sp) return;
  const ts = sp.ts;
  box.append(
    h(
      'div',
      { class: 'kpi step' },
      h('div', { class: 'k', text: 'step' }),
      h('div', { class: 'v', id: 'kpi-step', text: isNum(sp.step) ? fmtInt(sp.step) : '—' }),
      h('div', { class: 'd' }, h('span', { text: stepMeta(sp) }), h('span', { 'data-ago': ts, text: ago(ts) })),
    ),
  );
  const card = (label, key, value, pct, better, color) => {
    const [last, prev] = lastTwo(series, key);
    let delta = null;
    if (last && prev && isNum(value) && last.step === sp.step) {
      const dv = last.value - prev.value;
      const good = better === 'up' ? dv > 0 : dv < 0;
      const size = pct ? `${Math.abs(dv * 100).toFixed(1)} pt` : fmtNum(Math.abs(dv));
      const flat = pct ? size === '0.0 pt' : Math.abs(dv) <= 1e-12 * Math.abs(last.value);
      delta = h('span', {
        class: 'delta ' + (flat ? 'flat' : good ? 'good' : 'bad'),
        title: `change since step ${prev.step}`,
        text: flat ? '■ no change' : `${dv > 0 ? '▲ +' : '▼ −'}${size}`,
      });
    }
    box.append(
      h(
        'div',
        { class: 'kpi', 'data-key': key },
        h('div', { class: 'k', text: label }),
        h('div', { class: 'v', style: `color:${color}`, text: pct ? fmtPct(value) : fmtNum(value) }),
        h('div', { class: 'd' }, delta || h('span', { class: 'delta flat', text: ' ' })),
        sparkline(series, key, color),
      ),
    );
  };
  const m = sp.metrics || {},
    l = sp.loss || {};
  card('mIoU', 'metrics.miou', m.miou, true, 'up', 'var(--c-iou)');
  card('mean Dice', 'metrics.mean_dice', m.mean_dice, true, 'up', 'var(--c-dice)');
  card('total loss', 'loss.total', l.total, false, 'down', 'var(--c-total)');
  card('pixel accuracy', 'metrics.accuracy', m.accuracy, true, 'up', 'var(--c-acc-strong)');
  absentNote(sp);
}
