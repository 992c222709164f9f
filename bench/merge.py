#!/usr/bin/env python3
"""Put one section of bench/RESULTS.md in place, keeping the others.

    python3 bench/merge.py NAME RESULTS.md < section.md

The section lies between '<!-- begin NAME -->' and '<!-- end NAME -->'.  A
file without markers is taken as the 'messages' section (bench/run.sh's).
"""
import os
import re
import sys

name, path = sys.argv[1], sys.argv[2]
new = sys.stdin.read().rstrip("\n") + "\n"
block = f"<!-- begin {name} -->\n{new}<!-- end {name} -->\n"
old = open(path).read() if os.path.exists(path) else ""
if old and "<!-- begin " not in old:
    old = f"<!-- begin messages -->\n{old.rstrip()}\n<!-- end messages -->\n"
pat = re.compile(rf"<!-- begin {re.escape(name)} -->\n.*?<!-- end {re.escape(name)} -->\n", re.S)
if pat.search(old):
    out = pat.sub(lambda m: block, old)
else:
    out = (old.rstrip("\n") + "\n\n" if old else "") + block
tmp = path + ".tmp"
with open(tmp, "w") as f:
    f.write(out)
os.replace(tmp, path)
