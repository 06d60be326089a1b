/**
 * Shell scripts of the proxy adapters. Constants: every value arrives as a quoted argument ($1, …), never
 * pasted into the text. Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/**
 * Sends haproxy runtime-API commands to its admin socket, one connection each, with curl (`telnet://`
 * over `--unix-socket`: curl sends the line, haproxy answers and closes). Mode `show` prints every answer
 * after an `@@ <command>` line. Mode `set` stops at the first answer that is not a success (empty, or
 * `… changed from …` / `no need to change …` for an address), sends the commands after a `--undo`
 * argument (the put-back, answers ignored) and prints `ERR <command>: <answer>` (exit 20, or 21 when the
 * socket did not answer); when all pass and state-file is set, saves `show servers state` there (temp +
 * rename) for haproxy's `load-server-state-from-file` after a reload or restart.
 * args: socket timeout-seconds mode state-file command… [--undo command…]
 */
export const HAPROXY_SCRIPT = `s=$1; to=$2; mode=$3; sf=$4; shift 4
command -v curl >/dev/null 2>&1 || { echo "ERR curl is not installed on the host"; exit 70; }
[ -S "$s" ] || { echo "ERR $s is not a socket (is haproxy running with 'stats socket $s level admin'?)"; exit 71; }
ask() { printf '%s\\n' "$1" | curl -sS --max-time "$to" --unix-socket "$s" telnet://localhost -T - 2>&1; }
err=; rc=0
for c in "$@"; do
  [ "$c" = --undo ] && break
  out=$(ask "$c") || { err="ERR $c: cannot reach $s: $(printf '%s' "$out" | tail -n 1)"; rc=21; break; }
  if [ "$mode" = show ]; then echo "@@ $c"; printf '%s\\n' "$out"; continue; fi
  case "$out" in
    ''|*'changed from'*|*'no need to change'*) ;;
    *) err="ERR $c: $(printf '%s' "$out" | head -n 1)"; rc=20; break ;;
  esac
done
if [ $rc != 0 ]; then
  u=
  for c in "$@"; do
    if [ -n "$u" ]; then ask "$c" >/dev/null 2>&1; fi
    [ "$c" = --undo ] && u=1
  done
  echo "$err"; exit $rc
fi
if [ "$mode" = set ] && [ -n "$sf" ]; then
  ask 'show servers state' > "$sf.tmp" && mv -f "$sf.tmp" "$sf" || { echo "ERR cannot write $sf"; exit 22; }
fi
echo done
`

/**
 * Replaces the upstreams of caddy reverse_proxy handlers through its admin API with curl on the host, one
 * request per handler; when one is refused, the handlers already changed get their previous upstreams
 * back. Prints `ERR <id>: <status> <answer>` (exit 20; 21 when caddy did not answer) or `done`.
 * args: admin-url [id method new-json old-json]…
 */
export const CADDY_SCRIPT = `a=$1; shift
command -v curl >/dev/null 2>&1 || { echo "ERR curl is not installed on the host"; exit 70; }
put() { curl -sS --max-time 10 -X "$2" -H 'Content-Type: application/json' --data-binary "$3" -o /dev/null -w '%{http_code}' "$a/id/$1/upstreams" 2>&1; }
k=0; n=0; err=; rc=0
for x in "$@"; do
  case $k in 0) id=$x ;; 1) m=$x ;; 2) new=$x ;; 3)
    code=$(put "$id" "$m" "$new") || { err="ERR $id: caddy did not answer: $code"; rc=21; break; }
    [ "$code" = 200 ] || { err="ERR $id: caddy answered $code"; rc=20; break; }
    n=$((n + 1)) ;;
  esac
  k=$(( (k + 1) % 4 ))
done
if [ $rc != 0 ]; then
  k=0; j=0
  for x in "$@"; do
    [ $j -lt $n ] || break
    case $k in 0) id=$x ;; 3) put "$id" PATCH "$x" >/dev/null; j=$((j + 1)) ;; esac
    k=$(( (k + 1) % 4 ))
  done
  echo "$err"; exit $rc
fi
echo done
`
