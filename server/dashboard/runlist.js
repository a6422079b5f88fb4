// runlist.js - the list of runs in the sidebar: newest first, filtered by name, each with a
// box to lay it over the charts (the run shown in full is ticked and fixed) and, while runs
// are compared, its colour.
import { $, h, enc, isNum, fmtStep, plural, ago, parseTime, runColor } from './util.js';

export function renderRuns(state) {
  const ul = $('runs');
  ul.textContent = '';
  $('run-count').textContent = state.runs.length ? String(state.runs.length) : '';
  // newest run first (by creation, so the order does not jump while runs train)
  let runs = state.runs.every((r) => isNum(r.created_ms))
    ? [...state.runs].sort((a, b) => b.created_ms - a.created_ms || (a.run < b.run ? -1 : 1))
    : state.runs;
  const f = state.filter.trim().toLowerCase();
  if (f) runs = runs.filter((r) => r.run.toLowerCase().includes(f) || r.run === state.run);
  const comparing = state.compare.length > 0;
  for (const r of runs) {
    const t = parseTime(r.updated ?? r.updated_ms);
    const primary = r.run === state.run;
    const inCmp = state.compare.includes(r.run);
    const li = h(
      'li',
      { class: (primary ? 'on' : '') + (inCmp ? ' cmp' : '') || null },
      h('input', {
        type: 'checkbox',
        class: 'cmp-box',
        'data-run': r.run,
        checked: primary || inCmp,
        disabled: primary,
        title: primary ? 'the run shown in full' : `lay ${r.run} over the charts`,
        'aria-label': `compare ${r.run}`,
        style: comparing && (primary || inCmp) ? `accent-color:${runColor(r.run)}` : null,
      }),
      h(
        'a',
        { href: '#run=' + enc(r.run), 'data-run': r.run, title: r.run },
        h(
          'span',
          { class: 'top' },
          comparing && (primary || inCmp)
            ? h('i', { class: 'run-sw', style: `background:${runColor(r.run)}` })
            : null,
          h('span', { class: 'name', text: r.run }),
          t ? h('span', { class: 'when', 'data-ago': t, text: ago(t) }) : null,
        ),
        h(
          'span',
          { class: 'meta' },
          h('span', { text: `step ${fmtStep(r.last_step ?? 0)}` }),
          h('span', { text: plural(r.evaluations ?? 0, 'eval') }),
        ),
        h('span', { class: 'chips' }, ...(r.splits || []).map((sp) => h('span', { class: 'chip', text: sp }))),
      ),
    );
    ul.append(li);
  }
  if (!state.runs.length) ul.append(h('li', { class: 'none', text: 'none yet' }));
  else if (!runs.length) ul.append(h('li', { class: 'none', text: 'no run matches' }));
}
