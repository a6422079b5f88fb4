// overlays.js - the latest evaluations' overlays of the run shown (ground truth, prediction,
// errors), newest first.
import { $, h, enc, isNum, fmtStep } from './util.js';

const MAX_OVERLAYS = 4;

// Returns the ids drawn, so an unchanged list is not drawn again (the images would reload).
export function renderOverlays(sp, drawn) {
  const all = sp ? sp.latest.map((e) => e.id) : [];
  const ids = all.slice(0, MAX_OVERLAYS);
  const key = ids.join(',');
  $('overlay-sub').textContent = ids.length
    ? `${all.length > ids.length ? `${ids.length} newest` : 'newest first'}` +
      ' · ground truth | prediction | errors'
    : '';
  if (key === drawn && $('overlays').childElementCount) return key;
  const box = $('overlays');
  box.textContent = '';
  if (!ids.length) {
    box.append(h('p', { class: 'nodata-p', text: 'No overlays for this step.' }));
    return key;
  }
  for (const id of ids) {
    const src = `/v1/evaluations/${enc(id)}/overlay.png?item=0`;
    const img = h('img', { src, alt: `overlay of evaluation ${id}`, loading: 'lazy', decoding: 'async', 'data-id': id });
    const ref = sp.latest.find((e) => e.id === id) || {};
    const fig = h(
      'figure',
      { class: 'ov' },
      h('a', { href: src, target: '_blank', rel: 'noopener', title: 'open full size' }, img),
      h(
        'figcaption',
        null,
        h('a', {
          href: `/v1/evaluations/${enc(id)}`,
          target: '_blank',
          rel: 'noopener',
          text: id.length > 14 ? id.slice(0, 12) + '…' : id,
          title: `evaluation ${id} (JSON)`,
        }),
        isNum(ref.step) ? h('span', { text: ` · step ${fmtStep(ref.step)}` }) : null,
        isNum(ref.n) && ref.n > 1 ? h('span', { text: ` · item 1 of ${ref.n}` }) : null,
      ),
    );
    img.addEventListener('error', () => fig.classList.add('broken'));
    box.append(fig);
  }
  return key;
}
