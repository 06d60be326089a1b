/**
 * The exec action's shell scripts. Constants: every value reaches them as a quoted argument ($1, $2, …),
 * never pasted into the script text; the user's command is one such argument, the one of `sh -c`.
 * Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/**
 * Reads what exec needs of a host without taking the deploy lock: does the project path exist, the Compose
 * flavour (when asked: exec in a service container), the release `current` names and its release.json,
 * and whether a deploy holds the lock right now (probed only while a lock owner is recorded, so a host
 * at rest is never touched). Refuses a `.shipline` that is a symbolic link or another user's, as the
 * release store does.
 * args: path want-compose(0|1)
 * Prints `path ok|missing`, `compose v1|v2|none`, `current <id>`, `release <json>`, `busy <owner>`, `END`.
 */
export const STATE_SCRIPT = `p=$1; s="$1/.shipline"
if [ ! -d "$p" ]; then echo "path missing"; echo END; exit 0; fi
echo "path ok"
if [ -L "$s" ]; then echo "ERR $s is a symbolic link: shipline keeps its state in a folder of its own; remove the link (or move its target there)"; exit 76; fi
if [ -d "$s" ] && [ "$(stat -c %u "$s" 2>/dev/null)" != "$(id -u)" ]; then echo "ERR $s is not owned by the SSH user $(id -un): chown it to that user (or connect as its owner)"; exit 77; fi
if [ "$2" = 1 ]; then
  if docker compose version >/dev/null 2>&1; then echo "compose v2"
  elif command -v docker-compose >/dev/null 2>&1; then echo "compose v1"
  else echo "compose none"; fi
fi
c=$(readlink "$s/current" 2>/dev/null) || c=
c=\${c##*/}
echo "current $c"
if [ -n "$c" ] && [ -f "$s/releases/$c/release.json" ]; then
  printf 'release '; head -c 65536 "$s/releases/$c/release.json" | tr -d '\\n'; echo
fi
if [ -f "$s/lock.owner" ] && command -v flock >/dev/null 2>&1 && ! flock -n -s "$s/lock" true 2>/dev/null; then
  echo "busy $(head -c 300 "$s/lock.owner" 2>/dev/null | tr -d '\\n')"
fi
echo END
`

/**
 * Runs the command with its output bounded on the host, so a command that prints gigabytes cannot fill the
 * runner's memory: stdout and stderr each pass through a FIFO to `copy`, which forwards each chunk as it
 * comes (`dd` of one read at a time into a chunk file, counted with `wc -c`: `head -c` would hold
 * everything back in its stdio buffer until it ends, so nothing would stream and a time-out would lose it;
 * busybox `dd` does not print the bytes it copied) until `cap` bytes have gone, then reads the rest and
 * drops it (the command is never stopped by a closed pipe). Without a usable `dd` the stream is passed on
 * whole. The exit code is the command's own. Once the command has ended the readers forward what is
 * left; should something the command put in the background keep its output open, they are given 3 s,
 * then stopped (the step does not wait for a daemon the command started).
 * In a service container (`service` set), a running container of that service in the Compose project is
 * required first (a clear error, not Compose's exit 1). Failures of this wrapper itself (not the command's)
 * are reported as one `<mark> <reason>` line on stderr and exit 125.
 * args: mark cap cwd-or-empty project service-or-empty command…
 */
export const EXEC_SCRIPT = `m=$1; cap=$2; cwd=$3; proj=$4; svc=$5; shift 5
fail() { printf '\\n%s %s\\n' "$m" "$*" >&2; exit 125; }
copy() {
  left=$1; c=$2
  while [ "$left" -gt 0 ]; do
    dd bs=65536 count=1 of="$c" 2>/dev/null || exec cat >&3
    n=$(($(wc -c <"$c")))
    [ "$n" -gt 0 ] || return 0
    cat "$c" >&3
    left=$((left - n))
  done
  exec cat >/dev/null
}
if [ -n "$svc" ]; then
  ids=$(docker ps -q --filter "label=com.docker.compose.project=$proj" --filter "label=com.docker.compose.service=$svc" --filter "label=com.docker.compose.oneoff=False" 2>&1) || fail "docker ps failed: $ids"
  [ -n "$ids" ] || fail "no running container of service '$svc' in Compose project $proj: it is stopped or was never started ('docker ps -a' on the host tells)"
fi
if [ -n "$cwd" ]; then cd "$cwd" 2>/dev/null || fail "cannot enter $cwd"; fi
d=$(mktemp -d 2>/dev/null) || fail "cannot create a temporary folder (mktemp -d) on the host"
trap 'rm -rf "$d"' EXIT
trap 'rm -rf "$d"; exit 143' TERM
trap 'rm -rf "$d"; exit 129' HUP
mkfifo "$d/o" "$d/e" 2>/dev/null || fail "cannot make FIFOs in $d (mkfifo)"
{ copy "$cap" "$d/o.chunk" 3>&1; } <"$d/o" & po=$!
{ copy "$cap" "$d/e.chunk" 3>&2; } <"$d/e" & pe=$!
"$@" >"$d/o" 2>"$d/e"
rc=$?
( sleep 3; kill $po $pe ) </dev/null >/dev/null 2>&1 & k=$!
wait $po $pe 2>/dev/null
kill $k 2>/dev/null
exit $rc
`

/**
 * Inside the service container, after a time-out: `docker compose exec` does not stop what it started
 * when its client is killed, so every process that carries the run's token in its environment gets TERM,
 * then KILL 2 s later. args: token. Prints `stopped <n>`.
 */
export const KILL_SCRIPT = `t=$1; n=0
for sig in TERM KILL; do
  for d in /proc/[0-9]*; do
    p=\${d#/proc/}
    [ "$p" = "$$" ] && continue
    if grep -q "SHIPLINE_EXEC_TOKEN=$t" "$d/environ" 2>/dev/null; then kill -$sig "$p" 2>/dev/null && n=$((n+1)); fi
  done
  [ "$sig" = TERM ] && [ "$n" -gt 0 ] && sleep 2
done
echo "stopped $n"
`
