#!/usr/bin/env python3
"""Checks real HTTP answers of seglossd against api/openapi.yaml (standard library only).

Python's standard library reads no YAML, so the spec comes in as the JSON bundle that
`redocly bundle --ext json` writes (test_openapi.sh makes it). Each command prints "ok" or the
first few problems, and exits 0 or 1:

    openapi_keys.py response SPEC.json METHOD PATH STATUS HEADERS BODY
        the answer (curl -D HEADERS -o BODY) against the response the spec gives METHOD PATH
        STATUS: the status is listed, the Content-Type is one the spec lists, every required
        header is there, and a JSON body satisfies the schema: required keys, types (null
        included), const, enum, pattern, minimum/maximum, items, oneOf, additionalProperties
    openapi_keys.py unlisted SPEC.json HEADERS BODY
        a 404 for a path the spec does not list, against components/responses/NotFound
    openapi_keys.py routes SPEC.json INFO_BODY
        the spec's METHOD /path pairs are the routes GET /v1/info lists (the runs API and the
        dashboard included)
    openapi_keys.py query-params SPEC.json PROBLEM_BODY
        the query parameters of POST /v1/evaluate are the keys the daemon takes, as listed by
        its 400 for an unknown key ("... known: a, b, c")
    openapi_keys.py defaults SPEC.json INFO_BODY
        the defaults GET /v1/info reports are the ones the spec gives the params part
"""
import json
import os
import re
import sys

MAX_PROBLEMS = 8


def resolve(spec, node):
    """Follows local $refs ("#/components/...") until a node without one."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported: {ref}")
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        if seen > 32:
            raise ValueError(f"$ref loop at {ref}")
    return node


def type_ok(value, t):
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    return False


def validate(spec, schema, value, where, problems):
    """Appends to problems every way value breaks schema (a subset of JSON Schema 2020-12)."""
    schema = resolve(spec, schema)
    if len(problems) >= MAX_PROBLEMS:
        return
    if "oneOf" in schema or "anyOf" in schema:
        options = schema.get("oneOf") or schema.get("anyOf")
        fits = 0
        for option in options:
            trial = []
            validate(spec, option, value, where, trial)
            fits += not trial
        if fits == 0 or ("oneOf" in schema and fits > 1):
            problems.append(f"{where}: {json.dumps(value)[:80]} fits {fits} of the "
                            f"{len(options)} alternatives")
            return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(type_ok(value, t) for t in types):
            problems.append(f"{where}: {json.dumps(value)[:80]} is not {'|'.join(types)}")
            return
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if type_ok(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} > maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            problems.append(f"{where}: {value} <= exclusiveMinimum {schema['exclusiveMinimum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where}: required key '{key}' is missing")
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key in value:
                validate(spec, sub, value[key], f"{where}.{key}", problems)
        if schema.get("additionalProperties") is False:
            for key in value:
                if key not in props:
                    problems.append(f"{where}: key '{key}' is not in the spec")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(spec, schema["items"], item, f"{where}[{i}]", problems)


def read_headers(path):
    """curl -D output -> (status, {lower-case name: value}) of the last response in it."""
    status, headers = None, {}
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("HTTP/"):
                status, headers = int(line.split()[1]), {}
            elif ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
    return status, headers


def check_against(spec, response, status, headers_file, body_file):
    """Problems of the answer in headers_file/body_file against one response object."""
    problems = []
    response = resolve(spec, response)
    real_status, headers = read_headers(headers_file)
    if real_status != status:
        problems.append(f"the daemon answered {real_status}, the check wanted {status}")
    for name, header in response.get("headers", {}).items():
        header = resolve(spec, header)
        if header.get("required") and name.lower() not in headers:
            problems.append(f"required header {name} is missing")
    content = response.get("content", {})
    ctype = headers.get("content-type", "")
    media = next((m for m in content if m.split(";")[0] == ctype.split(";")[0].strip()), None)
    if content and media is None:
        problems.append(f"Content-Type {ctype!r} is not one of {list(content)}")
    body = b""
    if os.path.exists(body_file):  # curl writes no file for an empty body (204, 304)
        with open(body_file, "rb") as f:
            body = f.read()
    if media and "json" in media:
        try:
            doc = json.loads(body)
        except ValueError:
            return problems + [f"the body is not JSON: {body[:120]!r}"]
        validate(spec, content[media].get("schema", {}), doc, "body", problems)
    elif media and not body:
        problems.append("the body is empty")
    return problems


def check_response(spec, method, path, status, headers_file, body_file):
    op = spec.get("paths", {}).get(path, {}).get(method.lower())
    if op is None:
        return [f"the spec has no {method} {path}"]
    response = op.get("responses", {}).get(str(status))
    if response is None:
        return [f"the spec lists no {status} for {method} {path}"]
    return check_against(spec, response, status, headers_file, body_file)


def compare(listed, what_daemon, real):
    problems = []
    if listed - real:
        problems.append(f"in the spec, not {what_daemon}: {sorted(listed - real)}")
    if real - listed:
        problems.append(f"{what_daemon}, not in the spec: {sorted(real - listed)}")
    return problems


def check_routes(spec, info_file):
    """The spec's METHOD /path pairs against the routes GET /v1/info lists. /v1/info names the
    dashboard by its page (GET /); its assets are the spec's other dashboard paths."""
    with open(info_file) as f:
        served = set(json.load(f)["routes"])
    listed = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops
              if m in ("get", "post", "put", "delete", "patch")}
    assets = {f"GET {p}" for p, ops in spec["paths"].items()
              if "dashboard" in ops.get("get", {}).get("tags", []) and p != "/"}
    if "GET /" in served:
        served |= assets
    return compare(listed, "served", served), "ok"


def check_query_params(spec, problem_file):
    with open(problem_file) as f:
        detail = json.load(f)["detail"]
    if "known: " not in detail:
        return [f"no key list in the 400 for an unknown key: {detail!r}"]
    taken = {k.strip() for k in detail.split("known: ", 1)[1].split(",")}
    params = spec["paths"]["/v1/evaluate"]["post"].get("parameters", [])
    listed = {p["name"] for p in map(lambda x: resolve(spec, x), params) if p.get("in") == "query"}
    return compare(listed, "taken by the daemon", taken)


def check_defaults(spec, info_file):
    with open(info_file) as f:
        defaults = json.load(f)["defaults"]
    props = resolve(spec, spec["components"]["schemas"]["EvaluateParams"])["properties"]
    problems = []
    for key, value in defaults.items():
        if isinstance(value, str) and " " in value:
            continue  # a sentence such as "C of the logits": nothing to compare
        if key not in props:
            problems.append(f"{key} is not a parameter in the spec")
            continue
        want = resolve(spec, props[key]).get("default")
        if want != value:
            problems.append(f"{key}: the daemon's default is {value!r}, the spec's {want!r}")
    return problems


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[1], argv[3:]
    with open(argv[2]) as f:
        spec = json.load(f)
    good = "ok"
    if command == "response":
        method, path, status, headers_file, body_file = args
        problems = check_response(spec, method, path, int(status), headers_file, body_file)
    elif command == "unlisted":
        response = {"$ref": "#/components/responses/NotFound"}
        problems = check_against(spec, response, 404, args[0], args[1])
    elif command == "routes":
        problems, good = check_routes(spec, args[0])
    elif command == "query-params":
        problems = check_query_params(spec, args[0])
    elif command == "defaults":
        problems = check_defaults(spec, args[0])
    else:
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    if problems:
        print("; ".join(problems[:MAX_PROBLEMS]))
        return 1
    print(good)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
