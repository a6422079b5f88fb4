// items.js - the worst (or best) items of a step: the per-item figures the server keeps for
// every recorded evaluation, sorted by the chosen figure, each with its overlay; a click
// enlarges the overlay.
import { $, h, enc, isNum, fmtPct, fmtStep } from './util.js';

export const ITEM_LIMIT = 8;
export const ITEM_SORTS = [
  ['miou', 'mIoU'],
  ['accuracy', 'pixel accuracy'],
  ['mean_dice', 'mean Dice'],
];

export function itemsUrl(run, split, step, sort) {
  return (
    `/v1/runs/${enc(run)}/items?split=${enc(split)}&sort=${sort}&order=asc&limit=${ITEM_LIMIT}` +
    (isNum(step) ? `&step=${step}` : '')
  );
}

export function renderItems(host, data, names, sort) {
  host.textContent = '';
  const items = (data && data.items) || [];
  $('items-sub').textContent = data && isNum(data.step)
    ? `step ${fmtStep(data.step)} · ${items.length} of ${data.total} by ${sort.replace('_', ' ')}, lowest first`
    : '';
  if (!items.length) {
    host.append(h('p', { class: 'nodata-p', text: 'No per-item figures for this step.' }));
    return;
  }
  const label = (k) => (names && names[k] != null ? names[k] : `class ${k}`);
  for (const it of items) {
    const worstClass = (it.iou || [])
      .map((v, k) => [v, k])
      .filter(([v]) => isNum(v))
      .sort((a, b) => a[0] - b[0])[0];
    const img = it.overlay
      ? h('img', {
          src: it.overlay,
          alt: `overlay of item ${it.item} of evaluation ${it.evaluation}`,
          loading: 'lazy',
          decoding: 'async',
        })
      : h('div', { class: 'no-ov', text: 'no overlay kept' });
    const fig = h(
      'figure',
      {
        class: 'item',
        'data-evaluation': it.evaluation,
        'data-item': it.item,
        'data-miou': it.miou ?? '',
        'data-accuracy': it.accuracy ?? '',
        'data-mean_dice': it.mean_dice ?? '',
        tabindex: 0,
        title: 'enlarge',
      },
      img,
      h(
        'figcaption',
        null,
        h('b', { text: fmtPct(it[sort]) }),
        h('span', { text: ` ${sort === 'mean_dice' ? 'mean Dice' : sort === 'miou' ? 'mIoU' : 'accuracy'}` }),
        h('span', {
          class: 'dim',
          text: ` · item ${it.item} · ${it.present} class${it.present === 1 ? '' : 'es'}` +
            (worstClass ? ` · worst ${label(worstClass[1])} ${fmtPct(worstClass[0])}` : ''),
        }),
      ),
    );
    if (it.overlay) {
      const open = () => openLightbox(it, label);
      fig.addEventListener('click', open);
      fig.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') open();
      });
    }
    host.append(fig);
  }
}

function openLightbox(it, label) {
  const box = $('lightbox');
  const body = $('lightbox-body');
  body.textContent = '';
  body.append(
    h('img', { src: it.overlay, alt: `overlay of item ${it.item}`, id: 'lightbox-img' }),
    h(
      'p',
      null,
      `item ${it.item} of `,
      h('a', { href: `/v1/evaluations/${enc(it.evaluation)}`, target: '_blank', rel: 'noopener', text: it.evaluation.slice(0, 12) + '…' }),
      ` · mIoU ${fmtPct(it.miou)} · mean Dice ${fmtPct(it.mean_dice)} · accuracy ${fmtPct(it.accuracy)}`,
    ),
    h(
      'p',
      { class: 'dim' },
      'IoU: ' +
        (it.iou || [])
          .map((v, k) => (isNum(v) ? `${label(k)} ${fmtPct(v)}` : null))
          .filter(Boolean)
          .join(' · '),
    ),
    h('p', { class: 'dim', text: 'ground truth | prediction | errors' }),
  );
  box.hidden = false;
  $('lightbox-close').focus();
}

export function wireLightbox() {
  const close = () => {
    $('lightbox').hidden = true;
  };
  $('lightbox-close').addEventListener('click', close);
  $('lightbox').addEventListener('click', (ev) => {
    if (ev.target === $('lightbox')) close();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') close();
  });
}
