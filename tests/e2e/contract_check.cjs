// Validates recorded HTTP answers against api/openapi.yaml with a JSON Schema validator (ajv,
// draft 2020-12, the dialect of OpenAPI 3.1). Run by tests/e2e/contract_check.sh; needs ajv,
// ajv-formats and yaml under NPM_DIR/node_modules.
//
//   node contract_check.cjs NPM_DIR SPEC.yaml RECORDS.jsonl          validate every record
//   node contract_check.cjs NPM_DIR SPEC.yaml FIXTURES.jsonl --self  each fixture carries
//       "expect": "ok" or a piece of the reason it must be refused for; checks the verdicts
//
// A record is one answer (tests/e2e/harness.py record_answer): method, path (with its query),
// status, content_type, body (the text of a JSON body, else null), body_len and a few headers.
// An answer fits when: its path matches a path of the spec (a concrete path before a
// template) and the operation exists for its method, or, for a path the spec does not list,
// it is the 404 of components/responses/NotFound; the operation lists its status; its
// Content-Type is one the response lists (or it has no body and the response no content);
// the response's required headers are there; and a JSON body satisfies the media type's
// schema. Prints one line per problem and ends with "N passed, N failed".
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const [npmDir, specFile, recordsFile, mode] = process.argv.slice(2);
const need = createRequire(path.resolve(npmDir, 'node_modules') + '/');
const Ajv2020 = need('ajv/dist/2020').default;
const addFormats = need('ajv-formats').default;
const YAML = need('yaml');

const MAX_LINES = 40;
const spec = YAML.parse(fs.readFileSync(specFile, 'utf8'));

// Local refs ("#/components/...") become refs into the schema registered as "spec", so any
// piece of the spec can be compiled on its own.
function rebase(node) {
  if (Array.isArray(node)) return node.map(rebase);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node))
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? 'spec' + v : rebase(v);
    return out;
  }
  return node;
}
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addFormat('binary', true);
ajv.addSchema({ $id: 'spec', components: rebase(spec.components) });

function resolve(node) {
  for (let i = 0; node && node.$ref && i < 32; i++) {
    let at = spec;
    for (const part of node.$ref.slice(2).split('/'))
      at = at[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    node = at;
  }
  return node;
}

// The spec's paths as matchers: concrete paths first, then by fewer parameters.
const templates = Object.keys(spec.paths)
  .map((p) => ({
    path: p,
    params: (p.match(/\{/g) || []).length,
    re: new RegExp('^' + p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+') + '$'),
  }))
  .sort((a, b) => a.params - b.params);

function template(urlPath) {
  const t = templates.find((x) => x.re.test(urlPath));
  return t ? t.path : null;
}

const validators = new Map();
function validatorFor(schema) {
  const key = JSON.stringify(schema);
  if (!validators.has(key)) validators.set(key, ajv.compile(rebase(schema)));
  return validators.get(key);
}

// Why the record does not fit the spec, or '' when it does; and its operation's name.
function verdict(r) {
  const urlPath = r.path.split('?')[0];
  const tpl = template(urlPath);
  const method = r.method.toLowerCase();
  let response;
  let where;
  if (tpl === null) {
    where = `${r.method} ${urlPath} (not in the spec)`;
    if (r.status !== 404) return [where, `a path the spec does not list answered ${r.status}, not 404`];
    response = resolve({ $ref: '#/components/responses/NotFound' });
  } else {
    where = `${r.method} ${tpl}`;
    const op = spec.paths[tpl][method];
    if (!op) {
      // a method the path does not take: only the 405 every path answers
      if (r.status !== 405) return [where, `the spec has no ${r.method} ${tpl}, yet it answered ${r.status}`];
      const any = Object.values(spec.paths[tpl]).find((o) => o && o.responses && o.responses['405']);
      if (!any) return [where, `405, but no operation of ${tpl} lists a 405`];
      response = resolve(any.responses['405']);
    } else {
      response = resolve(op.responses[String(r.status)] || op.responses.default);
      if (!response) return [where, `the spec lists no ${r.status} for ${r.method} ${tpl}`];
    }
  }
  where += ` ${r.status}`;
  for (const [name, h] of Object.entries(response.headers || {})) {
    if (resolve(h).required && !(name.toLowerCase() in (r.headers || {})))
      return [where, `required header ${name} is missing`];
  }
  const content = response.content || {};
  const ctype = (r.content_type || '').split(';')[0].trim();
  const media = Object.keys(content).find((m) => m.split(';')[0] === ctype);
  for (const [prefix, want] of Object.entries(response['x-media-type-by-path-prefix'] || {})) {
    if (urlPath.startsWith(prefix) && media && media !== want)
      return [where, `Content-Type "${ctype}" under ${prefix}, where the spec says ${want}`];
  }
  if (r.body_len === 0 && (r.method === 'HEAD' || Object.keys(content).length === 0))
    return [where, ''];
  if (!media) {
    if (Object.keys(content).length === 0)
      return [where, `a body (${ctype || 'no Content-Type'}, ${r.body_len} bytes) where the spec lists none`];
    return [where, `Content-Type "${ctype}" is not one of ${JSON.stringify(Object.keys(content))}`];
  }
  if (r.method === 'HEAD' || !/json/.test(media)) return [where, ''];
  if (r.body === null || r.body === undefined) return [where, 'a JSON answer too large to record'];
  let doc;
  try {
    doc = JSON.parse(r.body);
  } catch (e) {
    return [where, `the body is not JSON: ${JSON.stringify(r.body.slice(0, 80))}`];
  }
  const schema = content[media].schema;
  if (!schema) return [where, ''];
  const validate = validatorFor(schema);
  if (validate(doc)) return [where, ''];
  const errs = validate.errors.slice(0, 3).map((e) => `${e.instancePath || '(body)'} ${e.message}` +
    (e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''));
  return [where, `schema: ${errs.join('; ')}`];
}

const lines = fs.readFileSync(recordsFile, 'utf8').split('\n').filter((l) => l.trim());
let passed = 0;
let failed = 0;
let printed = 0;
function say(text) {
  if (printed++ < MAX_LINES) console.log(text);
}

if (mode === '--self') {
  for (const line of lines) {
    const r = JSON.parse(line);
    const [where, why] = verdict(r);
    const name = `${r.name}: ${where}`;
    const ok = r.expect === 'ok' ? why === '' : why.includes(r.expect);
    if (ok) {
      passed++;
      say(`ok   the validator: ${name} -> ${why || 'fits'}`);
    } else {
      failed++;
      say(`FAIL the validator: ${name}: wanted ${r.expect === 'ok' ? 'a fit' : `"${r.expect}"`}, got ${why ? `"${why}"` : 'a fit'}`);
    }
  }
} else {
  const perTest = new Map();
  const problems = new Map();
  for (const line of lines) {
    let r;
    try {
      r = JSON.parse(line);
    } catch (e) {
      problems.set(`unreadable record ${line.slice(0, 60)}`, 1);
      continue;
    }
    const [where, why] = verdict(r);
    const t = perTest.get(r.test) || { answers: 0, bad: 0 };
    t.answers++;
    if (why) {
      t.bad++;
      const key = `${r.test}: ${where}: ${why}`;
      if (!problems.has(key)) problems.set(key, `${r.method} ${r.path.slice(0, 120)}`);
    }
    perTest.set(r.test, t);
  }
  for (const [test, t] of [...perTest.entries()].sort()) {
    if (t.bad === 0) {
      passed++;
      say(`ok   ${test}: all ${t.answers} answers fit api/openapi.yaml`);
    }
  }
  for (const [key, example] of problems) {
    failed++;
    say(`FAIL ${key} (e.g. ${example})`);
  }
  if (perTest.size === 0) {
    failed++;
    say(`FAIL no answers were recorded in ${recordsFile}`);
  }
}
if (printed > MAX_LINES) console.log(`     (${printed - MAX_LINES} more lines not shown)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
