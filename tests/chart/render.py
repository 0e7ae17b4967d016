#!/usr/bin/env python3
"""Render charts/purser with real Helm (helm-python-sdk: Helm v4 as a shared library).

The `helm template --include-crds` equivalent, offline: prints the chart's crds/ files, then
every rendered template, as multi-document YAML on standard output, each document preceded
by a `# Source: <path>` comment.

    render.py [--chart DIR] [--name RELEASE] [--namespace NS] [-f values.yaml ...] [--set-json JSON ...]
    render.py --lint [-f values.yaml ...]   # `helm lint --strict`: findings as JSON

Values files merge left to right and `--set-json` objects after them, as with `helm -f`; the
chart's own values.yaml is always the base. Exit code 1 and Helm's message on a render error.
"""

import argparse
import json
import os
import sys

import helm_python as helm

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CHART = os.path.normpath(os.path.join(HERE, "..", "..", "charts", "purser"))


def merge(base, override):
    """Deep-merge `override` into `base` (maps merge, everything else is replaced), like Helm."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", default=DEFAULT_CHART)
    parser.add_argument("--name", default="purser")
    parser.add_argument("--namespace", default="purser")
    parser.add_argument("-f", "--values", action="append", default=[])
    parser.add_argument("--set-json", action="append", default=[])
    parser.add_argument("--lint", action="store_true", help="print `helm lint --strict` findings as JSON")
    args = parser.parse_args()

    values = {}
    for path in args.values:
        with open(path, encoding="utf-8") as f:
            merge(values, helm.values_from_yaml(f.read()) or {})
    for text in args.set_json:
        merge(values, json.loads(text))

    if args.lint:
        report = helm.lint(args.chart, values, strict=True, namespace=args.namespace)
        print(json.dumps(report))
        return 0

    try:
        with helm.Chart.load(args.chart) as chart:
            crds = chart.crds
            rendered = chart.render(values, name=args.name, namespace=args.namespace, is_install=True)
    except helm.HelmError as e:
        print(f"helm: {e}", file=sys.stderr)
        return 1

    out = sys.stdout
    for crd in sorted(crds, key=lambda c: c["filename"]):
        out.write(f"---\n# Source: {crd['filename']}\n{crd['data'].strip()}\n")
    for path in sorted(rendered):
        if not path.endswith((".yaml", ".yml")):
            continue
        text = rendered[path].strip()
        if text:
            out.write(f"---\n# Source: {path}\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
