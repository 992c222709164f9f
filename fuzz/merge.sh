#!/usr/bin/env bash
# Keep what fuzzing found: merge the working corpora that scripts/run-tests.sh
# (or a longer run) left in build-fuzz/corpus/NAME into fuzz/corpus/NAME,
# adding only the inputs that reach new edges (libFuzzer -merge=1 with
# -use_counters=0: hit counts alone do not earn a place in the repository,
# which keeps a merge to a third of the files), then list what to commit.
# The working corpora keep everything for the next runs.
#
#   bash fuzz/merge.sh [NAME...]      e.g. bash fuzz/merge.sh message pkcs12
#
# An input larger than MAX_BYTES (default 64 KiB) is not committed: the
# repository stays small, and no target needs one to reach its code.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${MAX_BYTES:-65536}
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false >/dev/null
ninja -C build-fuzz >/dev/null
if [ $# -eq 0 ]; then
	set -- $(ls build-fuzz/corpus 2>/dev/null)
fi
for name in "$@"; do
	bin=build-fuzz/fuzz/fuzz_$name
	work=build-fuzz/corpus/$name
	corpus=fuzz/corpus/$name
	[ -x "$bin" ] && [ -d "$work" ] || { echo "$name: no target or no working corpus" >&2; continue; }
	mkdir -p "$corpus"
	small=$(mktemp -d)
	find "$work" -type f -size -$((max + 1))c -exec cp {} "$small/" \;
	n0=$(find "$corpus" -type f | wc -l)
	"$bin" -merge=1 -use_counters=0 -max_len="$max" -rss_limit_mb=2048 -timeout=10 "$corpus" "$small" \
	    >"build-fuzz/merge-$name.log" 2>&1 || { echo "$name: merge failed, see build-fuzz/merge-$name.log" >&2; rm -rf "$small"; exit 1; }
	rm -rf "$small"
	echo "$name: $(($(find "$corpus" -type f | wc -l) - n0)) inputs added to $corpus ($(du -sk "$corpus" | cut -f1) KiB)"
done
git status --short fuzz/corpus
