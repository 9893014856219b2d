#!/usr/bin/env bash
# Builds the Kubernetes test binaries (kube-apiserver, kubectl) from the Go module
# k8s.io/kubernetes (this tools module pins it) into the folder given as $1
# (default: <repo>/.bin/k8s), and links etcd there from PATH (Debian etcd-server).
# The folder is the envtest layout that KUBEBUILDER_ASSETS points at.
# Usage: tools/k8s/build.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/.bin/k8s}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
start=$(date +%s)
for cmd in kube-apiserver kubectl; do
	if [ -x "$out/$cmd" ] && [ "$out/$cmd" -nt go.mod ] && [ "$out/$cmd" -nt go.sum ]; then
		echo "tools/k8s: $out/$cmd is up to date"
		continue
	fi
	echo "tools/k8s: building $cmd into $out"
	nice -n 10 go build -trimpath -ldflags='-s -w' -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
	mv "$out/$cmd.tmp" "$out/$cmd"
done
if [ ! -e "$out/etcd" ]; then
	etcd_bin="$(command -v etcd || true)"
	if [ -z "$etcd_bin" ]; then
		echo "tools/k8s: no etcd on PATH (install Debian's etcd-server)" >&2
		exit 1
	fi
	ln -sf "$etcd_bin" "$out/etcd"
fi
echo "tools/k8s: binaries ready in $out ($(( $(date +%s) - start ))s)"
