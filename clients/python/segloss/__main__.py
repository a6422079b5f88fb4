"""python3 -m segloss: the client from the shell.

  python3 -m segloss evaluate --logits logits.npy --mask mask_0.png --mask mask_1.png \\
      [--url URL] [--param key=value ...] [--run RUN --step N --split S] [--dtype float16]
  python3 -m segloss history RUN --key loss.total [--split val] [--since-step N] [--url URL]
  python3 -m segloss runs [--url URL]

The URL defaults to $SEGLOSS_URL or http://127.0.0.1:8080, the token to $SEGLOSS_TOKEN.
evaluate prints the JSON answer; history prints "step<TAB>value" lines (value "null" when
undefined); errors go to stderr with exit status 1.
"""
import argparse
import json
import os
import sys

from .client import Client, SeglossError


def _value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv=None):
    # the connection options go before or after the command
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help="the daemon (default $SEGLOSS_URL or http://127.0.0.1:8080)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="default $SEGLOSS_TOKEN")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="seconds per attempt (120)")
    ap = argparse.ArgumentParser(prog="python3 -m segloss", parents=[common],
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", parents=[common],
                        help="evaluate one batch and print the JSON answer")
    ev.add_argument("--logits", required=True, help=".npy or .safetensors file")
    ev.add_argument("--mask", action="append", default=[],
                    help="a PNG per batch item in order, or one .npy (N,H,W)")
    ev.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a loss parameter; VALUE is JSON when it parses (e.g. "
                         "class_weights=[1,2,1]), else a string")
    ev.add_argument("--run")
    ev.add_argument("--step", type=int)
    ev.add_argument("--split")
    ev.add_argument("--dtype", choices=["float16", "bfloat16", "float32"])
    hi = sub.add_parser("history", parents=[common], help="print a metric's history of a run")
    hi.add_argument("run")
    hi.add_argument("--key", required=True, help="e.g. loss.total, metrics.miou")
    hi.add_argument("--split", default="val")
    hi.add_argument("--since-step", type=int)
    hi.add_argument("--json", action="store_true", help="print the points as JSON lines")
    sub.add_parser("runs", parents=[common], help="list the runs")
    args = ap.parse_args(argv)
    client = Client(getattr(args, "url", os.environ.get("SEGLOSS_URL", "http://127.0.0.1:8080")),
                    token=getattr(args, "token", os.environ.get("SEGLOSS_TOKEN")),
                    timeout=getattr(args, "timeout", 120.0))
    try:
        if args.command == "evaluate":
            params = {}
            for kv in args.param:
                key, sep, value = kv.partition("=")
                if not sep:
                    ap.error(f"--param {kv!r}: expected KEY=VALUE")
                params[key] = _value(value)
            if not args.mask:
                ap.error("evaluate needs at least one --mask")
            answer = client.evaluate(args.logits, args.mask, run=args.run, step=args.step,
                                     split=args.split, dtype=args.dtype, **params)
            json.dump(answer, sys.stdout, indent=1)
            sys.stdout.write("\n")
        elif args.command == "history":
            for p in client.iter_history(args.run, args.key, split=args.split,
                                         since_step=args.since_step):
                if args.json:
                    print(json.dumps(p))
                else:
                    v = p.get("value")
                    print(f"{p['step']}\t{'null' if v is None else repr(float(v))}")
        else:
            for r in client.runs():
                print(f"{r['run']}\tlast_step={r['last_step']}\tevaluations={r['evaluations']}")
    except SeglossError as e:
        print(f"segloss: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
