#!/bin/sh
# Apache httpd (mpm_prefork) on 127.0.0.1:PORT in the foreground:  apache2.sh PORT
# Its pid file, lock files and scoreboard go to a directory of their own per port.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 PORT" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=$1
RUNDIR=${TMPDIR:-/tmp}/conformance-apache2-$PORT
mkdir -p "$RUNDIR"
[ "$(id -u)" -eq 0 ] && chmod 755 "$RUNDIR"
export HERE PORT RUNDIR APACHE_RUN_USER=www-data APACHE_RUN_GROUP=www-data
exec apache2 -f "$HERE/apache2.conf" -DFOREGROUND
