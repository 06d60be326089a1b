/**
 * Shell scripts of the blue-green strategy. Constants: every value arrives as a quoted argument ($1, …),
 * never pasted into the text. Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/** Prints the live slot (`slot blue|green|`) and the host's MemAvailable in kB. args: state-dir */
export const PROBE_SCRIPT = `s=$1
slot=$(head -n 1 "$s/slot" 2>/dev/null | head -c 100) || slot=
echo "slot $slot"
echo "memavail $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null)"
`

/**
 * Stops and removes the containers of some services of one Compose project (a slot, or the project a
 * recreate deploy ran): \`docker stop -t grace\` lets the app finish what it is doing, then \`docker rm\`.
 * args: grace project service…
 */
export const STOP_SCRIPT = `g=$1; p=$2; shift 2
rc=0
for svc in "$@"; do
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$svc")
  [ -z "$ids" ] && continue
  docker stop -t "$g" $ids >/dev/null || rc=1
  docker rm -f $ids >/dev/null || rc=1
  echo "stopped $p/$svc"
done
exit $rc
`

/**
 * Runs a shell command of the user's (nginx -t, the reload), with its output, under a limit. The command
 * text is the user's own configuration (not data), passed as one argument to sh -c.
 */
export const USER_COMMAND = (cmd: string): string[] => ['sh', '-c', cmd]
