#!/usr/bin/env bash
# Builds the logferry Debian packages from the committed tree (git archive HEAD) plus
# packaging/debian, in a temporary directory. Version from git describe; output in $LF_DEB_OUT
# (default dist/ at the top of the checkout). Needs debhelper, devscripts (dpkg-buildpackage),
# fakeroot and the build dependencies: scripts/install-deps.sh installs them.
#   LF_DEB_VERSION=V      build version V instead (tests build a higher one to test upgrades)
#   LF_DEB_WORKTREE=1     build the working tree as it is (tracked and untracked files that git does
#                         not ignore) instead of HEAD: what the package tests of a change need
#   LF_DEB_MAINTAINER     the Maintainer field, "Name <address>"; default the author of HEAD
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

version=${LF_DEB_VERSION:-$version}

work=$(mktemp -d "${TMPDIR:-/tmp}/logferry-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/logferry-$version
mkdir -p "$src"
tree=HEAD
if [ "${LF_DEB_WORKTREE:-0}" = 1 ]; then
  # a tree object of the working tree, made with a throw-away index: HEAD and the index stay as
  # they are
  cp "$(git -C "$top" rev-parse --git-path index)" "$work/index" 2>/dev/null || true
  GIT_INDEX_FILE=$work/index git -C "$top" add -A
  tree=$(GIT_INDEX_FILE=$work/index git -C "$top" write-tree)
fi
git -C "$top" archive --format=tar "$tree" | tar -x -C "$src"
rm -rf "$src/debian"
cp -a "$top/packaging/debian" "$src/debian"

# Who the package is from: said, not made up (the author of the commit it is built from)
maintainer=${LF_DEB_MAINTAINER:-$(git -C "$top" log -1 --format='%an <%ae>' HEAD)}
sed -i "s|^Maintainer: .*|Maintainer: $maintainer|" "$src/debian/control"
date=$(git -C "$top" log -1 --format=%aD HEAD)
cat > "$src/debian/changelog" <<CHANGELOG
logferry ($version) unstable; urgency=medium

  * Build of $(git -C "$top" rev-parse --short HEAD)$([ "$tree" = HEAD ] || echo " with uncommitted changes") (git describe: $desc).

 -- $maintainer  $date
CHANGELOG

(cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" dpkg-buildpackage -us -uc -b)
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
echo "build-deb: logferry $version packages in $out"
ls -1 "$out"/*_"$version"_*.deb
