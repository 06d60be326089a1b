/**
 * Shell scripts of the swarm target. Constants: every value arrives as a quoted argument or on stdin.
 * Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/**
 * `docker stack deploy` of one release: checks the host is a swarm manager and logs in to the registry in
 * a temporary Docker config (password on stdin; removed on every exit path) with the host's own
 * environment, and only then reads the release's .env, as Compose does (`KEY=VALUE`, optional `export `,
 * comments, "double" and 'single' quotes stripped, an unquoted value's ` # comment` dropped), into the
 * environment of the stack deploy alone, for the compose files' `${VAR}` interpolation (`docker stack
 * deploy` does not read .env itself). Keys that are no shell names (`spring.profiles.active`: Compose does
 * not interpolate them either) and keys that would steer docker or the shell itself (PATH, DOCKER_*, …)
 * are skipped with a `skip` line; values are data, never evaluated. --with-registry-auth so the nodes can
 * pull, --prune so services a release no longer has go, --resolve-image never (pinned by digest already).
 * args: config-dir registry username stack env-file -c file [-c file …]   stdin: password (or nothing)
 */
export const STACK_DEPLOY_SCRIPT = `umask 077
cfg=$1; reg=$2; user=$3; stack=$4; envf=$5; shift 5
trap 'rm -rf "$cfg"' EXIT
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" != true ]; then
  echo "ERR this host is not a swarm manager"; exit 5
fi
if [ -n "$reg" ]; then
  mkdir -p "$cfg" && chmod 700 "$cfg" || exit 70
  docker --config "$cfg" login --username "$user" --password-stdin "$reg" >/dev/null || { echo "ERR login to $reg failed"; exit 3; }
else
  cat >/dev/null
fi
docker_bin=$(command -v docker)
if [ -n "$envf" ] && [ -f "$envf" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    line=\${line%"$(printf '\\r')"}
    line=\${line#"\${line%%[! ]*}"}
    case "$line" in ''|'#'*) continue ;; 'export '*) line=\${line#export }; line=\${line#"\${line%%[! ]*}"} ;; esac
    case "$line" in *=*) ;; *) continue ;; esac
    key=\${line%%=*}; key=\${key%"\${key##*[! ]}"}; val=\${line#*=}; val=\${val#"\${val%%[! ]*}"}
    case "$key" in ''|[0-9]*|*[!A-Za-z0-9_]*) echo "skip $key: not a variable name Compose interpolates"; continue ;; esac
    case "$key" in PATH|HOME|IFS|ENV|SHELL|PWD|OLDPWD|CDPATH|PS4|TMPDIR|LD_*|DOCKER_*|HTTP_PROXY|HTTPS_PROXY|NO_PROXY|ALL_PROXY|http_proxy|https_proxy|no_proxy|all_proxy|SSL_CERT_*)
      echo "skip $key: it would steer docker or the shell on the host"; continue ;; esac
    val=\${val%"\${val##*[! ]}"}
    case "$val" in
      \\"*\\") val=\${val#?}; val=\${val%?} ;;
      \\'*\\') val=\${val#?}; val=\${val%?} ;;
      *) case "$val" in *" #"*) val=\${val%% #*} ;; esac; val=\${val%"\${val##*[! ]}"} ;;
    esac
    export "$key=$val"
  done < "$envf"
fi
[ -n "$reg" ] && export DOCKER_CONFIG="$cfg"
"$docker_bin" stack deploy --with-registry-auth --prune --resolve-image never "$@" "$stack" </dev/null || { echo "ERR docker stack deploy failed"; exit 4; }
`
/**
 * Waits until every named service of the stack has converged on its current spec: no update running,
 * paused or rolled back, and as many tasks as desired running the spec's image (swarm reports a task with
 * a HEALTHCHECK as running only once it is healthy), for <stable> seconds. Fails at once when an update
 * paused or rolled back, or when a service's tasks keep failing; at the deadline, times out. Then prints
 * the task history and the last log lines of each failing service.
 * args: timeout stable stack tail service…
 */
export const CONVERGE_SCRIPT = `t=$1; stable=$2; stack=$3; n=$4; shift 4
end=$(( $(date +%s) + t ))
since=
last=
while :; do
  now=$(date +%s)
  report=; pending=; failed=
  for svc in "$@"; do
    name="\${stack}_$svc"
    info=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{else}}none{{end}} {{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}} {{.Spec.TaskTemplate.ContainerSpec.Image}}' "$name" 2>/dev/null) || { pending="$pending $svc"; report="$report $svc=missing"; continue; }
    up=$(echo "$info" | cut -d' ' -f1); want=$(echo "$info" | cut -d' ' -f2); img=$(echo "$info" | cut -d' ' -f3)
    tasks=$(docker service ps --no-trunc --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' "$name" 2>/dev/null)
    running=$(printf '%s\\n' "$tasks" | awk -v i="$img" '$1 == i && $2 == "Running"' | wc -l)
    desired=$(printf '%s\\n' "$tasks" | grep -c .)
    [ "$want" = global ] && want=$desired
    bad=$(docker service ps --no-trunc --format '{{.Image}} {{.CurrentState}}' "$name" 2>/dev/null | awk -v i="$img" '$1 == i && ($2 == "Failed" || $2 == "Rejected")' | wc -l)
    report="$report $svc=$up/$running/$want"
    case "$up" in
      paused|rollback_started|rollback_paused|rollback_completed) failed="$failed $svc" ;;
      updating) pending="$pending $svc" ;;
      *)
        if [ "$bad" -ge 2 ] && [ "$running" -lt "$want" ]; then failed="$failed $svc"
        elif [ "$running" -lt "$want" ] || [ "$desired" -gt "$want" ] || [ "$want" = 0 -a "$desired" != 0 ]; then pending="$pending $svc"; fi ;;
    esac
  done
  if [ "$report" != "$last" ]; then echo "state$report"; last=$report; fi
  if [ -n "$failed" ]; then result=failed; break; fi
  if [ -z "$pending" ]; then
    [ -z "$since" ] && since=$now
    if [ $((now - since)) -ge "$stable" ]; then result=healthy; break; fi
  else since=; fi
  if [ "$now" -ge "$end" ]; then result=timeout; failed=$pending; break; fi
  sleep 1
done
echo "result $result$failed"
for svc in $failed; do
  echo "logs $svc"
  docker service ps --no-trunc --format '{{.Name}} {{.Image}} {{.DesiredState}} {{.CurrentState}} {{.Error}}' "\${stack}_$svc" 2>&1 | head -n 10 | sed 's/^/| /'
  docker service logs --no-task-ids --tail "$n" "\${stack}_$svc" 2>&1 | tail -n "$n" | sed 's/^/| /'
done
[ "$result" = healthy ]
`
