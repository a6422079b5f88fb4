// classhistory.js - per-class history: the chosen classes' Dice (solid) and IoU (dashed) over
// the steps, from the history API's per-class keys (per_class.<figure>.<class>). A step where
// the class has no ground-truth pixels is a gap, and the caption counts them: in seed
// semantics such a class scores 0, which is not a fact about the model.
import { $, h, paletteColor } from './util.js';
import { fetchHistory } from './api.js';
import { lineChart } from './linechart.js';
import { smooth } from './series.js';

export const MAX_CLASSES = 8;

export function classKeys(classes) {
  return classes.flatMap((k) => [`per_class.dice.${k}`, `per_class.iou.${k}`, `per_class.support.${k}`]);
}

// {key: [points]} for the chosen classes, absent steps already nulled.
export async function loadClassHistory(run, split, classes) {
  if (!classes.length) return {};
  const pts = await fetchHistory(run, split, classKeys(classes), -9007199254740991);
  const by = {};
  for (const p of pts) (by[p.key] = by[p.key] || []).push(p);
  for (const k of classes) {
    const sup = new Map((by[`per_class.support.${k}`] || []).map((p) => [p.step, p.value]));
    for (const fig of ['dice', 'iou']) {
      const key = `per_class.${fig}.${k}`;
      by[key] = (by[key] || []).map((p) =>
        sup.get(p.step) === 0 ? { ...p, value: null, absent: true } : p,
      );
    }
  }
  return by;
}

export function renderClassChips(host, n, names, chosen, onToggle) {
  host.textContent = '';
  const label = (i) => (names && names[i] != null ? String(names[i]) : `class ${i}`);
  for (let i = 0; i < n; i++) {
    const on = chosen.includes(i);
    host.append(
      h(
        'button',
        {
          type: 'button',
          class: 'chip-btn' + (on ? ' on' : ''),
          'data-class': i,
          'aria-pressed': on ? 'true' : 'false',
          style: on ? `--chip:${paletteColor(chosen.indexOf(i))}` : null,
          onclick: () => onToggle(i),
        },
        label(i),
      ),
    );
  }
}

export function renderClassHistory(host, by, classes, names, opt) {
  const label = (i) => (names && names[i] != null ? String(names[i]) : `class ${i}`);
  const lines = [];
  let absentSteps = 0;
  classes.forEach((k, j) => {
    const color = paletteColor(j);
    for (const [fig, dash, name] of [
      ['dice', null, 'Dice'],
      ['iou', '5 4', 'IoU'],
    ]) {
      const key = `per_class.${fig}.${k}`;
      const points = by[key] || [];
      if (fig === 'iou') absentSteps += points.filter((p) => p.absent).length;
      lines.push({
        key,
        run: opt.run,
        label: `${label(k)} ${name}`,
        color,
        dash,
        width: fig === 'dice' ? 2 : 1.6,
        points,
        drawn: smooth(points, opt.smooth),
      });
    }
  });
  $('classhist-sub').textContent = classes.length
    ? absentSteps
      ? `${absentSteps} step${absentSteps === 1 ? '' : 's'} with a chosen class absent (no ground-truth pixels): gaps`
      : 'solid: Dice · dashed: IoU'
    : '';
  if (!classes.length) {
    host.textContent = '';
    host.append(h('p', { class: 'nodata-p', text: 'Choose classes above to draw their Dice and IoU over the steps.' }));
    return;
  }
  lineChart(host, lines, { ...opt, name: 'classhist', pct: true, log: false, height: 240 });
}
