# Every Go build and test goes through here: giouring links syscall.munmap
# by go:linkname, which Go >= 1.23 refuses unless told otherwise.
GO       ?= go
LDFLAGS  := -ldflags=-checklinkname=0
BIN      := bin/ringproxy
# The version `ringproxy version` prints: git describe, or "dev" outside git.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PKGS     := ./...

.PHONY: all build run test test-short fuzz vet fmt clean bench install uninstall failover-test

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
	./cmd/ringproxy/config:FuzzUnescape ./cmd/ringproxy/config:FuzzHex \
	./session/route:FuzzDetect \
	./session/proxyproto:FuzzParse ./session/proxyproto:FuzzRoundTrip ./session/proxyproto:FuzzAddrText \
	./session/clienthello:FuzzParse ./session/statefile:FuzzStateFile \
	./deploy/bench/rategen:FuzzRespParser
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
# unit (PREFIX put in its paths), the sysctl file, the docs and examples,
# and /etc/ringproxy/ringproxy.toml from deploy/ringproxy.toml (loopback
# only) unless one exists. make uninstall, with the same variables, removes
# what install put except that config, which may hold the operator's edits.
#
# The unit and sysctl directories follow PREFIX. /usr is a package: the
# distribution's own directories (pkg-config's systemdsystemunitdir and
# sysctldir). /usr/local is an install by hand: /usr/local/lib/systemd/system
# and /usr/local/lib/sysctl.d, which systemd and `sysctl --system` read as
# well, so /etc stays for the operator's overrides. Any other PREFIX is on
# neither search path: /etc/systemd/system and /etc/sysctl.d.
# SYSTEMD_UNIT_DIR and SYSCTL_DIR set them directly.
PREFIX  ?= /usr/local
DESTDIR ?=
ifeq ($(PREFIX),/usr)
SYSTEMD_UNIT_DIR ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/usr/lib/systemd/system)
SYSCTL_DIR       ?= $(or $(shell pkg-config --variable=sysctldir systemd 2>/dev/null),/usr/lib/sysctl.d)
else ifeq ($(PREFIX),/usr/local)
SYSTEMD_UNIT_DIR ?= /usr/local/lib/systemd/system
SYSCTL_DIR       ?= /usr/local/lib/sysctl.d
else
SYSTEMD_UNIT_DIR ?= /etc/systemd/system
SYSCTL_DIR       ?= /etc/sysctl.d
endif
# Expanded once here, not at every use (pkg-config runs once).
SYSTEMD_UNIT_DIR := $(SYSTEMD_UNIT_DIR)
SYSCTL_DIR       := $(SYSCTL_DIR)
BINDIR   := $(PREFIX)/bin
DOCDIR   := $(PREFIX)/share/doc/ringproxy
CONFIG   := /etc/ringproxy/ringproxy.toml
EXAMPLES := $(notdir $(wildcard deploy/examples/*.toml))
# Each doc file as source:name-in-DOCDIR.
DOCS     := README.md:README.md deploy/README.md:README.deploy.md \
	cmd/ringproxy/config/default.toml:default.toml \
	deploy/keepalived/keepalived.conf:keepalived.conf \
	deploy/keepalived/60-ringproxy-nonlocal-bind.conf:60-ringproxy-nonlocal-bind.conf

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/ringproxy
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed 's|/usr/local/|$(PREFIX)/|g' deploy/ringproxy.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/ringproxy.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/ringproxy.service
	install -D -m 0644 deploy/sysctl.d/60-ringproxy.conf $(DESTDIR)$(SYSCTL_DIR)/60-ringproxy.conf
	for d in $(DOCS); do install -D -m 0644 $${d%%:*} $(DESTDIR)$(DOCDIR)/$${d##*:} || exit 1; done
	for f in $(EXAMPLES); do install -D -m 0644 deploy/examples/$$f $(DESTDIR)$(DOCDIR)/examples/$$f || exit 1; done
	test -e $(DESTDIR)$(CONFIG) || install -D -m 0644 deploy/ringproxy.toml $(DESTDIR)$(CONFIG)
	@# An earlier make install put these in /etc, where they shadow the new ones.
	@for f in /etc/systemd/system/ringproxy.service /etc/sysctl.d/60-ringproxy.conf; do \
		test $$f = $(SYSTEMD_UNIT_DIR)/ringproxy.service -o $$f = $(SYSCTL_DIR)/60-ringproxy.conf -o ! -e $(DESTDIR)$$f || \
		echo "warning: $(DESTDIR)$$f, from an older install, overrides the file just installed: remove it"; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ringproxy $(DESTDIR)$(SYSTEMD_UNIT_DIR)/ringproxy.service $(DESTDIR)$(SYSCTL_DIR)/60-ringproxy.conf
	for d in $(DOCS); do rm -f $(DESTDIR)$(DOCDIR)/$${d##*:}; done
	for f in $(EXAMPLES); do rm -f $(DESTDIR)$(DOCDIR)/examples/$$f; done
	rmdir --ignore-fail-on-non-empty $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@test ! -e $(DESTDIR)$(CONFIG) || echo "kept $(DESTDIR)$(CONFIG): it may hold your edits; remove it (and /etc/ringproxy) by hand"

clean:
	rm -rf bin
