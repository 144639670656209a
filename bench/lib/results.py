#!/usr/bin/env python3
"""Writes the benchmark's results file and prints its table (run by scripts/bench.sh).

    results.py RESULTS_TSV JSON_OUT --started-at T --finished-at T --mode quick|full --cores N
               --pg2kafka V --postgresql V --librdkafka V --kafka V
               [--workload W]... [--failed W]...

RESULTS_TSV holds one figure a line, as bench/lib/common.sh's `record` writes it: workload,
metric, value, unit, target ("OP NUMBER" or "-") and note, tab-separated. Each figure gets `met`:
yes or no when the target is "OP NUMBER" (OP one of <= >= < >) and the value a number, "-"
otherwise. The JSON goes to JSON_OUT, one figure a line; the table's rows (workload, metric,
value, unit, target, met; a header first) go to stdout, tab-separated, for `column -t`.
"""

import argparse
import json
import operator
import os
import re
import sys

FIELDS = ("workload", "metric", "value", "unit", "target", "note")
COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # a value written as a JSON number
NUMBER_PREFIX = re.compile(r"\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)")


def leading_number(text):
    """The number text starts with, 0 if none (as awk reads a string as a number)."""
    match = NUMBER_PREFIX.match(text)
    return float(match.group(0)) if match else 0.0


def met(value, target):
    if target == "-" or not re.fullmatch(r"-?[0-9.]+", value):
        return "-"
    op, _, bound = target.partition(" ")
    compare = COMPARE.get(op)
    if compare is None:
        return "-"
    return "yes" if compare(leading_number(value), leading_number(bound)) else "no"


def json_value(value):
    if NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    return value


def read_figures(path):
    figures = []
    with open(path, encoding="utf-8") as tsv:
        for line in tsv:
            cells = line.rstrip("\n").split("\t")
            cells += [""] * (len(FIELDS) - len(cells))
            figure = dict(zip(FIELDS, cells))
            figure["met"] = met(figure["value"], figure["target"])
            figures.append(figure)
    return figures


def memory_gib():
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1048576, 1)
    return None


def dumps(value):
    return json.dumps(value, ensure_ascii=False)


def write_json(doc, out):
    """doc as JSON: a key a line, and a list of objects with one object a line."""
    items = []
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join("    " + dumps(row) for row in value)
            items.append(f"  {dumps(key)}: [\n{rows}\n  ]")
        else:
            items.append(f"  {dumps(key)}: {dumps(value)}")
    out.write("{\n" + ",\n".join(items) + "\n}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_tsv")
    parser.add_argument("json_out")
    for option in ("started-at", "finished-at", "mode", "pg2kafka", "postgresql", "librdkafka",
                   "kafka"):
        parser.add_argument("--" + option, required=True)
    parser.add_argument("--cores", type=int, required=True)
    parser.add_argument("--workload", action="append", default=[])
    parser.add_argument("--failed", action="append", default=[])
    args = parser.parse_args()

    figures = read_figures(args.results_tsv)
    doc = {
        "started_at": args.started_at,
        "finished_at": args.finished_at,
        "mode": args.mode,
        "machine": {
            "cores": args.cores,
            "kernel": f"{os.uname().sysname} {os.uname().release}",
            "memory_gib": memory_gib(),
        },
        "versions": {
            "pg2kafka": args.pg2kafka,
            "postgresql": args.postgresql,
            "librdkafka": args.librdkafka,
            "kafka": args.kafka,
        },
        "workloads": args.workload,
        "failed": args.failed,
        "results": [
            {
                "workload": f["workload"],
                "metric": f["metric"],
                "value": json_value(f["value"]),
                "unit": f["unit"],
                "target": f["target"],
                "met": f["met"],
                "note": f["note"],
            }
            for f in figures
        ],
    }
    with open(args.json_out, "w", encoding="utf-8") as out:
        write_json(doc, out)

    table = sys.stdout
    table.write("workload\tmetric\tvalue\tunit\ttarget\tmet\n")
    for f in figures:
        table.write("\t".join(f[k] for k in ("workload", "metric", "value", "unit", "target", "met")))
        table.write("\n")


if __name__ == "__main__":
    main()
