# Every Go build and test goes through here: giouring links syscall.munmap
# by go:linkname, which Go >= 1.23 refuses unless told otherwise.
GO       ?= go
LDFLAGS  := -ldflags=-checklinkname=0
BIN      := bin/ringproxy
# The version `ringproxy version` prints: git describe, or "dev" outside git.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PKGS     := ./...

.PHONY: all build run test test-short fuzz vet fmt clean bench install failover-test

all: build

build:
	$(GO) build -ldflags='-checklinkname=0 -X main.version=$(VERSION)' -o $(BIN) ./cmd/ringproxy

# make run: the demo (default config plus two built-in HTTP backends).
run: build
	./$(BIN) demo

test: vet
	$(GO) test $(LDFLAGS) -count=1 -timeout 20m $(PKGS)
	$(GO) test $(LDFLAGS) -race -count=1 -timeout 20m $(PKGS)

# Two appliances behind keepalived in network namespaces fail over and
# back (root, keepalived, curl, python3; not part of make test).
failover-test: build
	bash deploy/keepalived/failover-test.sh

test-short:
	$(GO) test $(LDFLAGS) -short -count=1 $(PKGS)

vet:
	$(GO) vet $(LDFLAGS) $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }

# make fuzz FUZZTIME=60s: every fuzz target, one after the other (go test
# fuzzes one target per run). Their seed corpora run in make test.
FUZZTIME ?= 30s
FUZZ_TARGETS := ./cmd/ringproxy/config:FuzzParse ./cmd/ringproxy/config:FuzzLocate \
	./session/route:FuzzDetect \
	./session/proxyproto:FuzzParse ./session/proxyproto:FuzzRoundTrip ./session/proxyproto:FuzzAddrText \
	./session/clienthello:FuzzParse
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*} fn=$${t##*:}; echo "fuzz $$pkg $$fn"; \
		$(GO) test $(LDFLAGS) -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg/; \
	done

# make bench [BENCH_SECONDS=2] [BENCH_STEPS=sweep] [BENCH_ROUNDS=1]: ringproxy
# (both engines) against HAProxy, a Go io.Copy proxy and no proxy, side by
# side, then the concurrency sweep; see deploy/bench/README.md. Needs root
# (it apt-get installs haproxy, nginx, wrk, iperf3, redis if missing).
bench:
	GO=$(GO) bash deploy/bench/run.sh

# make install [PREFIX=/usr/local] [DESTDIR=...]: the binary, the systemd
# unit, the sysctl file, and an example config unless one exists.
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ringproxy
	install -D -m 0644 deploy/ringproxy.service $(DESTDIR)/etc/systemd/system/ringproxy.service
	sed -i 's|/usr/local/|$(PREFIX)/|g' $(DESTDIR)/etc/systemd/system/ringproxy.service
	install -D -m 0644 deploy/sysctl.d/60-ringproxy.conf $(DESTDIR)/etc/sysctl.d/60-ringproxy.conf
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/ringproxy/README.md
	install -D -m 0644 deploy/keepalived/keepalived.conf $(DESTDIR)$(PREFIX)/share/doc/ringproxy/keepalived.conf
	test -e $(DESTDIR)/etc/ringproxy/ringproxy.toml || install -D -m 0644 deploy/examples/web-edge.toml $(DESTDIR)/etc/ringproxy/ringproxy.toml

clean:
	rm -rf bin
