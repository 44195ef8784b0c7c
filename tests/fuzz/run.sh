#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a set time: run.sh <build-fuzz-dir> <seconds>.
# Each target grows a copy of its seed corpus in the build dir, so the repository only ever holds
# the seeds. Exits non-zero when any target crashed, after naming the input that did it.
set -euo pipefail
usage="usage: run.sh <build-fuzz-dir> <seconds-per-target>"
build=${1:?$usage}
seconds=${2:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build"
build=$(cd "$build" && pwd)

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log"; exit 1; }
fi
cmake --build "$build" >"$build/build.log" 2>&1 || { cat "$build/build.log"; exit 1; }
echo "fuzz targets built in $SECONDS s"

export UBSAN_OPTIONS=print_stacktrace=1
crashed=()
for source in "$here"/*_fuzz.cpp; do
  target=$(basename "$source" .cpp)
  corpus="$build/corpus/$target"
  artifacts="$build/crashes/$target"
  log="$build/logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp -r "$here/corpus/$target/." "$corpus/"
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix="$artifacts/")
  dict="$here/${target%_fuzz}.dict"
  case $target in
    # The four provider targets read the same field names.
    *_response_fuzz) dict="$here/provider_response.dict" ;;
    # toml11 slows down quadratically with a key's dots: past 1 KB, one input can take seconds
    # under the sanitizers and trip the timeout, which is toml11's speed rather than a crash.
    config_fuzz) options+=(-max_len=1024) ;;
  esac
  [ -f "$dict" ] && options+=(-dict="$dict")
  started=$SECONDS
  status=0
  "$build/$target" "${options[@]}" "$corpus" >"$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "$target: ${executions:-?} executions in $((SECONDS - started)) s," \
    "corpus $(ls "$corpus" | wc -l)"
  if [ "$status" -ne 0 ]; then
    grep -E '^==[0-9]+==ERROR|runtime error|^SUMMARY|Test unit written to' "$log" ||
      tail -n 30 "$log"
    echo "$target: crashed (exit $status); full log: $log"
    crashed+=("$target")
  fi
done
if [ ${#crashed[@]} -ne 0 ]; then
  echo "crashed: ${crashed[*]}"
  exit 1
fi
