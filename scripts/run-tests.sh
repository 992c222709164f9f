#!/usr/bin/env bash
# Run every test of the project and end with "N passed, N failed".
#
#   unit tests (cmocka, TAP) in build/
#   integration and interoperability tests (tests/integration/*.sh)
#   fuzz targets over their corpora, then a few minutes of fuzzing in all (clang, libFuzzer) in build-fuzz/
#   unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer in build-san/
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log=$root/build/test-logs
mkdir -p "$log"
passed=0
failed=0
skipped=0
failures=()

count_tap() { # name file
	local name=$1 file=$2 p f s
	# A SKIP directive makes a skip whether the line says ok or not ok (TAP 13;
	# cmocka writes "not ok N # SKIP").
	local skip='^(not )?ok [0-9]+.*# (SKIP|skip)'
	p=$(grep -E '^ok [0-9]+' "$file" | grep -cvE "$skip" | tr -d ' ')
	s=$(grep -cE "$skip" "$file" | tr -d ' ')
	f=$(grep -E '^not ok [0-9]+' "$file" | grep -cvE "$skip" | tr -d ' ')
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	if [ "$f" -gt 0 ]; then
		failures+=("$name")
		grep -E '^not ok' "$file" | grep -vE "$skip" | sed "s|^|  $name: |"
	fi
	printf '%-34s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
}

run_unit() { # builddir label
	local dir=$1 label=$2 t name out rc
	for t in "$dir"/tests/unit/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=$label/$(basename "$t")
		out=$log/$(echo "$name" | tr / _).tap
		(cd "$root" && CMOCKA_MESSAGE_OUTPUT=TAP timeout 600 "$t") >"$out" 2>&1
		rc=$?
		if [ $rc -ne 0 ] && ! grep -E '^not ok' "$out" | grep -qvE '# (SKIP|skip)'; then
			echo "not ok 999 - $name exited $rc without a failing test" >>"$out"
			tail -n 20 "$out"
		fi
		count_tap "$name" "$out"
	done
}

echo "== unit tests"
run_unit build unit

echo "== integration and interoperability tests"
for t in tests/integration/*.sh; do
	[ -f "$t" ] && [ "$(basename "$t")" != lib.sh ] || continue
	name=integration/$(basename "$t" .sh)
	out=$log/$(echo "$name" | tr / _).tap
	SMIME=$root/build/smime SMIME_SOURCE_ROOT=$root timeout 900 bash "$t" >"$out" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && ! grep -E '^not ok' "$out" | grep -qvE '# (SKIP|skip)'; then
		echo "not ok 999 - $name exited $rc without a failing test" >>"$out"
		tail -n 20 "$out"
	fi
	count_tap "$name" "$out"
done

echo "== fuzz targets over their corpora"
# Each target first runs its committed corpus (fuzz/corpus/NAME: seeds and
# regression inputs; SMIME_FUZZ_EXTRA adds a folder) once, then fuzzes for
# fuzz_seconds NAME.  The fuzzing goes on from where the last run stopped:
# inputs that add coverage collect in build-fuzz/corpus/NAME, and
# `bash fuzz/merge.sh` minimises them into fuzz/corpus/ to be committed.
fuzz_seconds() { # target
	if [ -n "${SMIME_FUZZ_SECONDS:-}" ]; then
		echo "$SMIME_FUZZ_SECONDS"
		return
	fi
	case $1 in
	fuzz_message) echo 40 ;;  # the slowest, and the most code behind it
	fuzz_pkcs12 | fuzz_scep) echo 30 ;;
	*) echo 15 ;;
	esac
}
fuzz_options() { # target: options beyond the common ones
	case $1 in
	fuzz_sst) echo -max_len=16384 ;;  # a few groups; the Windows stores are 760 KB
	esac
}
if [ -d fuzz ] && ls fuzz/fuzz_*.c >/dev/null 2>&1; then
	if [ ! -f build-fuzz/build.ninja ]; then
		CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false >/dev/null
	fi
	out=$log/fuzz.tap
	: >"$out"
	if ninja -C build-fuzz >"$log/fuzz-build.log" 2>&1; then
		n=0
		for f in build-fuzz/fuzz/fuzz_*; do
			[ -f "$f" ] && [ -x "$f" ] || continue
			tname=$(basename "$f")
			corpus=fuzz/corpus/${tname#fuzz_}
			work=build-fuzz/corpus/${tname#fuzz_}
			secs=$(fuzz_seconds "$tname")
			n=$((n + 1))
			dirs=("$corpus")
			[ -n "${SMIME_FUZZ_EXTRA:-}" ] && dirs+=("$SMIME_FUZZ_EXTRA")
			mkdir -p "$work"
			before=$(find "$work" -type f | wc -l)
			# shellcheck disable=SC2046
			if [ -d "$corpus" ] && "$f" -runs=0 $(fuzz_options "$tname") "${dirs[@]}" \
			        >"$log/$tname.log" 2>&1 &&
			    "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
			        -print_final_stats=1 -artifact_prefix="$log/" $(fuzz_options "$tname") \
			        "$work" "$corpus" >>"$log/$tname.log" 2>&1; then
				grown=$(($(find "$work" -type f | wc -l) - before))
				rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log/$tname.log" | tail -n 1)
				echo "ok $n - $tname over $corpus and $secs s of fuzzing ($rate execs/s, $grown new inputs in $work)" >>"$out"
			else
				echo "not ok $n - $tname (see $log/$tname.log)" >>"$out"
				tail -n 30 "$log/$tname.log"
			fi
		done
	else
		echo "not ok 1 - fuzz targets build (see $log/fuzz-build.log)" >>"$out"
		tail -n 30 "$log/fuzz-build.log"
	fi
	count_tap fuzz "$out"
fi

echo "== unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
if [ ! -f build-san/build.ninja ]; then
	meson setup build-san -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
if ninja -C build-san >"$log/san-build.log" 2>&1; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_unit build-san sanitizers
else
	echo "not ok 1 - sanitizer build" >"$log/san.tap"
	tail -n 30 "$log/san-build.log"
	count_tap sanitizers "$log/san.tap"
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failing groups: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
