#!/bin/sh
# Runs the data path benchmark (bench/README.md, "Data path") from the
# repository root: installs fortio if it is missing (v1.68.2: newer releases
# need a module the Go proxy refuses) and passes its arguments on, e.g.
# bench/datapath/run.sh -rev HEAD, -scenarios grpc, -haproxy off or -mtls on. The program builds
# trellis-cp and trellis-dp itself (from the working tree unless -bin/-rev).
# HAProxy, the baseline, is used when installed (apt-get install -y haproxy).
set -eu
cd "$(dirname "$0")/../.."
if ! command -v fortio >/dev/null 2>&1 && [ ! -x "$(go env GOPATH)/bin/fortio" ]; then
	echo "installing fortio v1.68.2 ..." >&2
	go install fortio.org/fortio@v1.68.2
fi
exec go run ./bench/datapath "$@"
