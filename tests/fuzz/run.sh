#!/bin/sh
# Runs fuzz harnesses for a while each, seeded from tests/fuzz/corpus/<name>;
# prints executions and coverage, and fails (with the log's tail) on a finding.
#   tests/fuzz/run.sh libfuzzer SECONDS build-fuzz/fuzz_x ...   (make fuzz)
#   tests/fuzz/run.sh m32 SECONDS build-fuzz/m32/fuzz_x ...     (make fuzz-m32)
#   tests/fuzz/run.sh afl SECONDS build-fuzz/afl/fuzz_x ...     (make fuzz-afl)
# libFuzzer's corpus grows in build-fuzz/corpus-<name> (the i386 build shares it);
# AFL++ keeps its own state in build-fuzz/afl/out-<name>.
set -u
mode=$1 secs=$2
shift 2

# A UBSan report is a finding: without halt_on_error the harnesses (built
# recoverable) print it and go on, and the round passes.  Reported findings not
# yet fixed where they are: tests/fuzz/ubsan.supp (ubsan-m32.supp for i386).
supp=$(pwd)/tests/fuzz/ubsan.supp
[ "$mode" = m32 ] && supp=$(pwd)/tests/fuzz/ubsan-m32.supp
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp"

dict_for() {
	case $1 in
	fuzz_fcgi_*|fuzz_conn) echo tests/fuzz/fcgi.dict ;;
	fuzz_access_format) echo tests/fuzz/access_format.dict ;;
	esac
}

# An i386 binary on a kernel without CONFIG_IA32_EMULATION (this VM's) runs
# under qemu-user's i386 emulation: same code, same checks, slower.
runner=
if [ "$mode" = m32 ] && [ $# -gt 0 ]; then
	"$1" -help=1 >/dev/null 2>&1
	if [ $? -eq 126 ]; then
		command -v qemu-i386 >/dev/null 2>&1 || {
			echo "fuzz-m32: this kernel cannot run i386 binaries and qemu-i386 (qemu-user) is missing" >&2
			exit 1
		}
		echo "fuzz-m32: the kernel runs no i386 binaries: running them under qemu-i386"
		runner=qemu-i386
		# LeakSanitizer stops the world with ptrace, which qemu-user does not
		# offer: at exit it spins for ever.  Leaks are the x86-64 round's job.
		export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	fi
fi

for f in "$@"; do
	n=$(basename "$f")
	dict=$(dict_for "$n")
	echo "== $n ($mode) for ${secs}s"
	case $mode in
	libfuzzer|m32)
		mkdir -p "build-fuzz/corpus-$n"
		log=$(dirname "$f")/$n.log
		seeds="tests/fuzz/corpus/$n"
		if [ "$mode" = m32 ]; then
			# i386 readdir() fails with EOVERFLOW on a 64-bit host's directory
			# offsets (qemu-user): libFuzzer would find no file.  Name them.
			list=$(dirname "$f")/$n.seeds
			find "build-fuzz/corpus-$n" "tests/fuzz/corpus/$n" -type f | paste -sd, - > "$list"
			seeds=-seed_inputs=@$list
		fi
		# shellcheck disable=SC2086
		$runner "$f" -max_total_time="$secs" -print_final_stats=1 ${dict:+-dict=$dict} \
			-artifact_prefix="$(dirname "$f")/$n-" \
			"build-fuzz/corpus-$n" "$seeds" > "$log" 2>&1
		rc=$?
		grep -E '^(Done|stat::number_of_executed_units)|DONE ' "$log"
		if [ $rc -ne 0 ]; then
			tail -40 "$log"
			exit 1
		fi
		;;
	afl)
		out=build-fuzz/afl/out-$n
		log=build-fuzz/afl/$n.log
		mkdir -p "$out"
		# No UI, no CPU pinning or governor checks (a shared machine), resume
		# an earlier run's state.
		# afl-fuzz wants abort_on_error and symbolize=0 in the sanitizers' options.
		AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_AUTORESUME=1 \
		AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
		UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:symbolize=0:suppressions=$supp" \
			afl-fuzz -V "$secs" -i "tests/fuzz/corpus/$n" -o "$out" ${dict:+-x "$dict"} -- "$f" \
			> "$log" 2>&1
		rc=$?
		st=$out/default/fuzzer_stats
		if [ $rc -ne 0 ] || [ ! -f "$st" ]; then
			tail -30 "$log"
			exit 1
		fi
		grep -E '^(execs_done|execs_per_sec|corpus_count|edges_found|total_edges|bitmap_cvg|stability|saved_crashes|saved_hangs) ' "$st"
		if [ "$(sed -n 's/^saved_crashes *: *//p' "$st")" != 0 ]; then
			echo "$n: AFL++ saved crashes in $out/default/crashes:"
			ls "$out/default/crashes"
			exit 1
		fi
		;;
	*)
		echo "usage: $0 libfuzzer|m32|afl SECONDS BINARY..." >&2
		exit 64
		;;
	esac
done
