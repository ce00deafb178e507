#!/bin/sh
# mkcerts.sh DIR — test certificates for the TLS tests (never for production), made once:
#   ca.pem/ca.key            a test CA (ECDSA P-256)
#   server.pem/server.key    leaf for localhost, 127.0.0.1, ::1 signed by the CA (server.pem:
#                            leaf then the CA: a chain)
#   server2.pem/server2.key  a second leaf, same names, another serial (reload tests)
#   expired.pem/expired.key  signed by the CA, notAfter in the past
#   self.pem/self.key        self-signed for localhost
#   wronghost.pem/.key       signed by the CA for DNS:example.invalid only
# Idempotent: a DIR that already holds every file (stamp .done) is left alone. No prompts.
# Safe when several test runs call it at once: the set is made in a temporary directory that is
# renamed to DIR in one step (the loser of a race drops its copy).
set -e
DIR=${1:?usage: mkcerts.sh DIR}
DIR=${DIR%/}
[ -f "$DIR/.done" ] && exit 0
mkdir -p "$(dirname "$DIR")"
OUT=$(mktemp -d "$DIR.tmp.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
T="$OUT/work"
mkdir "$T"
SAN="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key "$T/ca.key"
openssl req -x509 -new -key "$T/ca.key" -sha256 -days 3650 -subj "/CN=tether test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$T/ca.pem"

# leaf NAME SERIAL SAN: a CA-signed leaf valid for ten years.
leaf() {
    key "$T/$1.key"
    openssl req -new -key "$T/$1.key" -subj "/CN=$1" -out "$T/$1.csr"
    printf '%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" > "$T/$1.ext"
    openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial "$2" \
        -days 3650 -sha256 -extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null
    cat "$T/$1.crt" "$T/ca.pem" > "$T/$1.pem"
}
leaf server 4097 "$SAN"
leaf server2 4098 "$SAN"
leaf wronghost 4099 "subjectAltName=DNS:example.invalid"

# expired: `openssl ca` takes explicit dates (3.0's x509 has no -not_after).
key "$T/expired.key"
openssl req -new -key "$T/expired.key" -subj "/CN=expired" -out "$T/expired.csr"
mkdir -p "$T/db"
: > "$T/db/index.txt"
echo 1001 > "$T/db/serial"
cat > "$T/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $T/db
database = $T/db/index.txt
serial = $T/db/serial
new_certs_dir = $T/db
certificate = $T/ca.pem
private_key = $T/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = ext
[any]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
$SAN
CNF
openssl ca -batch -config "$T/ca.cnf" -in "$T/expired.csr" -startdate 20200101000000Z \
    -enddate 20200201000000Z -notext -out "$T/expired.crt" 2>/dev/null
cat "$T/expired.crt" "$T/ca.pem" > "$T/expired.pem"

key "$T/self.key"
openssl req -x509 -new -key "$T/self.key" -sha256 -days 3650 -subj "/CN=localhost" \
    -addext "$SAN" -out "$T/self.pem"

for f in ca server server2 expired self wronghost; do
    mv "$T/$f.pem" "$T/$f.key" "$OUT/"
done
rm -rf "$T"
touch "$OUT/.done"
chmod 755 "$OUT"
# rename(2) replaces a missing or empty DIR; a DIR made meanwhile by another run is kept.
if ! mv -T "$OUT" "$DIR" 2>/dev/null; then
    [ -f "$DIR/.done" ] || { cp -p "$OUT"/*.pem "$OUT"/*.key "$DIR/" && touch "$DIR/.done"; }
fi
