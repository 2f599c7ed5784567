#!/bin/sh
# nginx on 127.0.0.1:PORT in the foreground (daemon off):  nginx.sh PORT
# nginx's configuration has no variables for `listen`, so this writes one per port.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 PORT" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=$1
RUNDIR=${TMPDIR:-/tmp}/conformance-nginx-$PORT
mkdir -p "$RUNDIR"
sed -e "s|@PORT@|$PORT|g" -e "s|@RUNDIR@|$RUNDIR|g" -e "s|@HERE@|$HERE|g" \
    "$HERE/nginx.conf.in" > "$RUNDIR/nginx.conf"
exec nginx -p "$RUNDIR" -c "$RUNDIR/nginx.conf" -g 'daemon off;'
