#!/usr/bin/env bash
# Creates a CA and the adapter's serving certificate for the manual path (no cert-manager).
# Usage: generate-certs.sh [OUT_DIR] (default: certs/ next to this script). Keep the CA key
# (ca.key) out of the cluster; only ca.crt, tls.crt and tls.key are rendered into Secrets.
set -euo pipefail
out=${1:-"$(cd "$(dirname "$0")" && pwd)/certs"}
days=${DAYS:-365}
mkdir -p "$out"
cd "$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$((days * 10))" \
  -subj "/CN=kpiscale-ca" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=kpiscale-adapter.kpiscale-system.svc" -keyout tls.key -out tls.csr 2>/dev/null
cat > san.ext <<'EXT'
subjectAltName=DNS:kpiscale-adapter.kpiscale-system.svc,DNS:kpiscale-adapter.kpiscale-system.svc.cluster.local
extendedKeyUsage=serverAuth
basicConstraints=CA:FALSE
EXT
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
  -extfile san.ext -out tls.crt 2>/dev/null
rm -f tls.csr san.ext ca.srl
chmod 600 ca.key tls.key
echo "wrote $out/{ca.crt,ca.key,tls.crt,tls.key}"
