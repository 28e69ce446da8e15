#!/usr/bin/env bash
# Builds the logferry Debian packages from the committed tree (git archive HEAD) plus
# packaging/debian, in a temporary directory. Version from git describe; output in $LF_DEB_OUT
# (default dist/ at the top of the checkout). Needs debhelper, devscripts (dpkg-buildpackage),
# fakeroot and the build dependencies: scripts/install-deps.sh installs them.
set -euo pipefail

top=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
out=${LF_DEB_OUT:-$top/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Debian version: a tag vX.Y.Z[-N-gHASH] gives X.Y.Z[+N.gHASH]; without a tag, the project version
# from CMakeLists.txt, the commit count and the abbreviated hash (always increasing on main).
desc=$(git -C "$top" describe --tags --long --always 2>/dev/null || true)
if [[ $desc =~ ^v?([0-9][0-9A-Za-z.]*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
  if [ "${BASH_REMATCH[2]}" = 0 ]; then version=${BASH_REMATCH[1]}
  else version=${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}; fi
else
  base=$(sed -n 's/^project(logferry VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
  version=${base:-0.0.0}+git$(git -C "$top" rev-list --count HEAD).g$(git -C "$top" rev-parse --short HEAD)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/logferry-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/logferry-$version
mkdir -p "$src"
git -C "$top" archive --format=tar HEAD | tar -x -C "$src"
rm -rf "$src/debian"
cp -a "$top/packaging/debian" "$src/debian"
# The docs are installed from the source tree: install.md may be newer than HEAD while it is written.
cp "$top/docs/install.md" "$src/docs/install.md" 2>/dev/null || true

date=$(git -C "$top" log -1 --format=%aD HEAD)
cat > "$src/debian/changelog" <<CHANGELOG
logferry ($version) unstable; urgency=medium

  * Build of $(git -C "$top" rev-parse --short HEAD) (git describe: $desc).

 -- logferry maintainers <logferry@example.org>  $date
CHANGELOG

(cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" dpkg-buildpackage -us -uc -b)
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
echo "build-deb: logferry $version packages in $out"
ls -1 "$out"/*_"$version"_*.deb
