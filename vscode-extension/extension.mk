# The VS Code extension: build, package, test (unit, webviews in Chromium, end to end in
# code-server) and the demo. Included by the top-level Makefile; run from the repository root.
# Each target sets itself up: npm ci, Debian's chromium, Node 24 + code-server in
# vscode-extension/.tools (cached: installed once, reused while the folders are there).

EXT := vscode-extension
EXT_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' $(EXT)/package.json)
EXT_VSIX := $(EXT)/build/memlens-$(EXT_VERSION).vsix
EXT_NPM_STAMP := $(EXT)/node_modules/.memlens-npm-ci
EXT_SOURCES := $(shell find $(EXT)/src $(EXT)/media/src $(EXT)/media/webview.css -type f) $(EXT)/package.json
CHROMIUM := /usr/bin/chromium

.PHONY: extension-test extension-typecheck extension-unit extension-webview extension-e2e \
	extension-vsix extension-chromium extension-code-server extension-demo extension-clean

$(EXT_NPM_STAMP): $(EXT)/package.json $(EXT)/package-lock.json
	cd $(EXT) && npm ci --no-audit --no-fund
	touch $@

$(EXT_VSIX): $(EXT_NPM_STAMP) $(EXT_SOURCES) $(EXT)/README.md $(EXT)/LICENSE $(EXT)/.vscodeignore
	cd $(EXT) && npm run -s package

extension-vsix: $(EXT_VSIX)

extension-chromium:
	@test -x $(CHROMIUM) || { \
		test "$$(id -u)" = 0 || { echo "memlens: the webview and e2e tests need Debian's chromium: apt-get install chromium" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

extension-code-server:
	$(EXT)/scripts/install-code-server.sh

extension-typecheck: $(EXT_NPM_STAMP)
	cd $(EXT) && npm run -s typecheck

extension-unit: $(EXT_NPM_STAMP) $(STAMP)
	cd $(EXT) && npm run -s test:unit

extension-webview: $(EXT_NPM_STAMP) extension-chromium
	cd $(EXT) && npm run -s test:webview

extension-e2e: $(EXT_VSIX) $(STAMP) extension-chromium extension-code-server
	cd $(EXT) && npm run -s test:e2e

extension-test: extension-typecheck extension-unit extension-webview extension-e2e

# code-server with the extension on examples/; prints the URL (MEMLENS_DEMO_HOST/PORT
# override 127.0.0.1:8080). Stays up while a terminal is attached (Ctrl+C stops it).
extension-demo: $(EXT_VSIX) $(STAMP) extension-code-server
	cd $(EXT) && node scripts/build.mjs --tests && node out/scripts/demo.js

# Build outputs and test artefacts; the cached Node 24 and code-server (.tools) stay.
extension-clean:
	rm -rf $(EXT)/node_modules $(EXT)/dist $(EXT)/out $(EXT)/build $(EXT)/media/*.js $(EXT)/media/*.js.map build/e2e build/demo
