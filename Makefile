# Trellis build and test entry points. `make test` is the project's test
# command (README.md); .ci/run calls it with TRELLIS_TEST_STRICT=1.

GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 8s
VERSION   ?= dev
LDFLAGS   := -X github.com/trellis-mesh/trellis/internal/version.Version=$(VERSION)
# grpcnotrace keeps golang.org/x/net/trace (and the html/template it pulls
# in, which keeps every protobuf method linked) out of the binaries:
# trellis-dp 41 → 25 MB, less of it mapped in every sidecar.
TAGS      ?= grpcnotrace

# Packages whose tests start processes or whole control planes: run without
# -race (slow under the race detector); everything else runs with -race.
E2E_PKGS  := ./test/...
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v '/test/')

# Fuzz targets: package:FuzzName, each run for $(FUZZTIME).
FUZZ_TARGETS := ./internal/resource:FuzzDecode ./internal/resource:FuzzDecodeForPath \
	./api/mesh:FuzzDecodeFlat ./api/common:FuzzIntOrString \
	./internal/tokens:FuzzParseDataplaneToken \
	./internal/dataplane/runtime/tlsctx:FuzzSANMatch ./internal/dataplane/runtime/peer:FuzzParseURISANs \
	./internal/dataplane/runtime/listener:FuzzClassify \
	./internal/dataplane/runtime/httpproxy:FuzzH1Request ./internal/dataplane/runtime/httpproxy:FuzzChunked \
	./internal/xds/server:FuzzDecodeDataplane \
	./internal/dataplane/runtime/accesslog/format:FuzzParse ./internal/dataplane/runtime/tracing:FuzzExtract \
	./internal/dataplane/runtime/dns:FuzzHandleMessage ./internal/kds:FuzzDecode

.PHONY: build test vet unit e2e fuzz bench fmt demo

build:
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# A whole mesh on loopback until Ctrl-C: control plane, a frontend and a
# backend app, their sidecars. More: make demo DEMO_ARGS="--backends 3".
DEMO_ARGS ?=
demo: build
	$(BIN)/trellisctl demo $(DEMO_ARGS)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

e2e:
	$(GO) test -count=1 -timeout 20m $(E2E_PKGS)

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

test: vet unit fuzz e2e

bench:
	$(GO) run ./bench/store

# Data path: direct vs a trellis-dp pair vs an HAProxy pair on loopback,
# about 19 minutes (HTTP, gRPC and TCP scenarios); needs fortio (bench/datapath/run.sh installs it), uses
# haproxy when installed. Not part of "make test". See bench/README.md.
.PHONY: bench-datapath
bench-datapath:
	bench/datapath/run.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

# Kubernetes test binaries: kube-apiserver and kubectl built from
# k8s.io/kubernetes (the tools/k8s module), etcd linked from PATH (Debian's
# etcd-server), all in .bin/k8s: the KUBEBUILDER_ASSETS folder that
# internal/testing/envtest uses. A cold build takes minutes on 2 cores.
.PHONY: k8s-test-bins
k8s-test-bins:
	tools/k8s/build.sh $(CURDIR)/.bin/k8s
