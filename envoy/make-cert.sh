#!/bin/sh
# Makes a throwaway self-signed certificate for the gateway's Kubernetes listener (:6443), for trying Portcullis
# locally. Production deployments mount a real certificate at the same paths.
#   usage: envoy/make-cert.sh [out-dir] [host-name]     (defaults: envoy/tls, localhost)
# Writes <out-dir>/tls.crt and <out-dir>/tls.key; mount <out-dir> at /etc/portcullis/tls (docker-compose.yaml does).
# Point kubectl at it with `certificate-authority: <out-dir>/tls.crt` in the kubeconfig.
set -eu
out=${1:-"$(dirname "$0")/tls"}
host=${2:-localhost}
mkdir -p "$out"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
  -keyout "$out/tls.key" -out "$out/tls.crt" \
  -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,DNS:envoy,IP:127.0.0.1" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
# World-readable on purpose: Envoy in the official image runs as uid 101, and this key is for local trials only.
chmod 644 "$out/tls.key"
echo "wrote $out/tls.crt and $out/tls.key (CN=$host)"
