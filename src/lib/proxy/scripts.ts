/**
 * Shell scripts of the proxy adapters. Constants: every value arrives as a quoted argument ($1, …), never
 * pasted into the text. Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/**
 * Sends haproxy runtime-API commands to its admin socket with curl (`telnet://` over `--unix-socket`: curl
 * sends the line, haproxy answers and closes; about 0.1 s a connection). Mode `show` sends each command on a
 * connection of its own and prints every answer after an `@@ <command>` line. Mode `set` sends all the
 * commands on one connection, `;`-separated (haproxy runs them in order and ends each answer with an empty
 * line), and reads the answers back in order: a command whose answer is not a success (empty, or
 * `… changed from …` / `no need to change …` for an address) fails the change. Then the commands after a
 * `--undo` argument (the put-back) are sent the same way and `ERR <command>: <answer>` is printed (exit 20,
 * or 21 when the socket did not answer), naming a put-back that failed too; when all pass and state-file is
 * set, saves `show servers state` there (temp + rename) for haproxy's `load-server-state-from-file` after a
 * reload.
 * args: socket timeout-seconds mode state-file command… [--undo command…]
 */
export const HAPROXY_SCRIPT = `s=$1; to=$2; mode=$3; sf=$4; shift 4
command -v curl >/dev/null 2>&1 || { echo "ERR curl is not installed on the host"; exit 70; }
[ -S "$s" ] || { echo "ERR $s is not a socket (is haproxy running with 'stats socket $s level admin'?)"; exit 71; }
ask() { printf '%s\\n' "$1" | curl -sS --max-time "$to" --unix-socket "$s" telnet://localhost -T - 2>&1; }
# the answers in order, each ended by an empty line: the first that is not a success, as "index answer"
firstbad() {
  printf '%s\\n\\n' "$1" | awk 'BEGIN { i = 1 }
    /^$/ { if (b != "" && b !~ /changed from|no need to change/) { print i " " b; exit } i++; b = ""; next }
    { b = (b == "" ? $0 : b " " $0) }'
}
if [ "$mode" = show ]; then
  for c in "$@"; do
    out=$(ask "$c") || { echo "ERR $c: cannot reach $s: $(printf '%s' "$out" | tail -n 1)"; exit 21; }
    echo "@@ $c"; printf '%s\\n' "$out"
  done
  echo done; exit 0
fi
line=; undo=; u=
for c in "$@"; do
  if [ "$c" = --undo ]; then u=1; continue; fi
  if [ -n "$u" ]; then undo="\${undo:+$undo; }$c"; else line="\${line:+$line; }$c"; fi
done
err=; rc=0
if [ -n "$line" ]; then
  if out=$(ask "$line"); then
    bad=$(firstbad "$out")
    if [ -n "$bad" ]; then
      i=\${bad%% *}; n=0
      for c in "$@"; do n=$((n + 1)); [ "$n" = "$i" ] && { err="ERR $c: \${bad#* }"; break; }; done
      [ -n "$err" ] || err="ERR \${bad#* }"
      rc=20
    fi
  else
    err="ERR $line: cannot reach $s: $(printf '%s' "$out" | tail -n 1)"; rc=21
  fi
fi
if [ $rc != 0 ]; then
  if [ -n "$undo" ]; then
    if out=$(ask "$undo"); then why=$(firstbad "$out"); why=\${why#* }; else why="cannot reach $s"; fi
    [ -z "$why" ] || err="$err; putting the previous servers back failed too ($why): check the backend with 'show servers state'"
  fi
  echo "$err"; exit $rc
fi
if [ -n "$sf" ]; then
  ask 'show servers state' > "$sf.tmp" && mv -f "$sf.tmp" "$sf" || { echo "ERR cannot write $sf"; exit 22; }
fi
echo done
`

/**
 * Replaces the upstreams of caddy reverse_proxy handlers through its admin API with curl on the host, one
 * request per handler; when one is refused, the handlers already changed get their previous upstreams
 * back (a put-back refused too is named in the ERR line: the routes may be half-switched). Prints
 * `ERR <id>: <status> <answer>` (exit 20; 21 when caddy did not answer) or `done`.
 * args: admin-url [id method new-json old-json]…
 */
export const CADDY_SCRIPT = `a=$1; shift
command -v curl >/dev/null 2>&1 || { echo "ERR curl is not installed on the host"; exit 70; }
put() { curl -sS --max-time 10 -X "$2" -H 'Content-Type: application/json' --data-binary "$3" -o /dev/null -w '%{http_code}' "$a/id/$1/upstreams" 2>&1; }
k=0; n=0; err=; rc=0; pb=
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
    case $k in 0) id=$x ;; 3) code=$(put "$id" PATCH "$x"); [ "$code" = 200 ] || pb="$pb $id"; j=$((j + 1)) ;; esac
    k=$(( (k + 1) % 4 ))
  done
  [ -z "$pb" ] || err="$err; putting back failed too for$pb: check caddy's routes"
  echo "$err"; exit $rc
fi
echo done
`
