// urlstate.js - the view in the URL hash, so a link reproduces it:
//   #run=A&split=val&cmp=B,C&smooth=0.6&x=time&zoom=100~900&classes=1,3&istep=1200&isort=accuracy
// run is the run shown in full; cmp the runs laid over it; zoom a range of the x axis; istep
// the step the confusion matrix and the worst items are read at (absent: the latest).
const LIST = (v) => (v ? v.split(',').filter(Boolean) : []);

export function readHash() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ''));
  const num = (k) => (p.has(k) && p.get(k) !== '' && Number.isFinite(+p.get(k)) ? +p.get(k) : null);
  const zoom = (p.get('zoom') || '').split('~').map(Number);
  return {
    run: p.get('run'),
    split: p.get('split'),
    compare: LIST(p.get('cmp')),
    smooth: Math.min(0.999, Math.max(0, num('smooth') ?? 0)),
    xMode: p.get('x') === 'time' ? 'time' : 'step',
    zoom: zoom.length === 2 && zoom.every(Number.isFinite) && zoom[0] < zoom[1] ? zoom : null,
    classes: LIST(p.get('classes'))
      .map(Number)
      .filter((k) => Number.isInteger(k) && k >= 0),
    istep: num('istep'),
    isort: ['miou', 'accuracy', 'mean_dice'].includes(p.get('isort')) ? p.get('isort') : 'miou',
  };
}

export function writeHash(v, replace) {
  const p = new URLSearchParams();
  if (v.run) p.set('run', v.run);
  if (v.split) p.set('split', v.split);
  if (v.compare && v.compare.length) p.set('cmp', v.compare.join(','));
  if (v.smooth) p.set('smooth', String(v.smooth));
  if (v.xMode === 'time') p.set('x', 'time');
  if (v.zoom) p.set('zoom', v.zoom.map((x) => +x.toPrecision(10)).join('~'));
  if (v.classes && v.classes.length) p.set('classes', v.classes.join(','));
  if (v.istep !== null && v.istep !== undefined) p.set('istep', String(v.istep));
  if (v.isort && v.isort !== 'miou') p.set('isort', v.isort);
  const hash = '#' + p.toString().replace(/%2C/g, ',').replace(/%7E/g, '~');
  if (hash === location.hash) return;
  if (replace) history.replaceState(null, '', hash);
  else history.pushState(null, '', hash);
}
