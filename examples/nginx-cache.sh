#!/bin/sh
# Renders examples/nginx-cache.conf (read it first: what is cached, and where the proxy
# must listen) into DIR/nginx.conf, for an nginx of its own: nginx -p DIR -c DIR/nginx.conf.
#
# usage: sh examples/nginx-cache.sh DIR UPSTREAM LISTEN [MAX_SIZE] [USER]
#   DIR       where the config, pid, logs and (in DIR/cache) the cached objects go
#   UPSTREAM  the store's host:port, as nginx reaches it (rgw.site-a.internal:7480)
#   LISTEN    the address jobs reach, on the runners' private network (10.1.0.5:8080)
#   MAX_SIZE  the cache's size on disk (default 50g): a site's working set of packs
#   USER      the user nginx's workers run as when it starts as root (default www-data)
# Then each job of the site gets EPHEMERA_S3_ENDPOINT=http://LISTEN (the store's URL, bucket
# and credentials stay as they are).
set -eu
[ $# -ge 3 ] || { sed -n '5,13p' "$0" >&2; exit 2; }
dir=$1 upstream=$2 listen=$3 max_size=${4:-50g} user=${5:-www-data}
case "$upstream" in
  *://*) echo "UPSTREAM is host:port, not a URL: $upstream" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/cache"
dir=$(cd "$dir" && pwd)
user_line=""
if [ "$(id -u)" -eq 0 ]; then
  user_line="user $user;"
  chown "$user" "$dir/cache"
fi
sed -e "s|@DIR@|$dir|g" -e "s|@CACHE@|$dir/cache|g" -e "s|@UPSTREAM@|$upstream|g" \
  -e "s|@LISTEN@|$listen|g" -e "s|@MAX_SIZE@|$max_size|g" -e "s|@USER_LINE@|$user_line|g" \
  "$here/nginx-cache.conf" > "$dir/nginx.conf"
echo "$dir/nginx.conf"
