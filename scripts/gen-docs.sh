#!/usr/bin/env bash
# Writes the generated documentation from a build's programs: docs/configuration.md and the manual
# pages in docs/man/ (one per program, section 8, and logferry.conf(5)), all from the programs'
# definitions and configuration tables. With --check, writes them under the build directory and
# fails when a committed file differs (scripts/test.sh runs that).
# Usage: scripts/gen-docs.sh [--check] [BUILD_DIR (default build/ci)]
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
build=${1:-build/ci}
programs=(uploader receiver parser analytics monitor)

out=docs
[ $check = 1 ] && out=$build/generated-docs
mkdir -p "$out/man"
"$build/logferry-config-docs" > "$out/configuration.md"
"$build/logferry-config-docs" --man > "$out/man/logferry.conf.5"
for p in "${programs[@]}"; do
  "$build/logferry-$p" --man > "$out/man/logferry-$p.8"
done

if [ $check = 1 ]; then
  stale=0
  for f in configuration.md man/logferry.conf.5 "${programs[@]/#/man/logferry-}"; do
    case $f in man/logferry-*) f=$f.8 ;; esac
    if ! diff -u "docs/$f" "$out/$f"; then
      echo "docs/$f is stale: run scripts/gen-docs.sh $build"
      stale=1
    fi
  done
  exit $stale
fi
echo "gen-docs: docs/configuration.md and docs/man/ written from $build"
