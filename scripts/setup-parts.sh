#!/usr/bin/env bash
# Installs and starts the real parts shipline's tests and sandbox use. Idempotent; needs root (or the parts
# already present). Safe to run again and again: it installs only what is missing and starts dockerd only
# when no Docker engine answers.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have dockerd || need_pkgs+=(docker.io)
have docker-compose || need_pkgs+=(docker-compose)
have docker-registry || need_pkgs+=(docker-registry)
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
have ssh-keygen || need_pkgs+=(openssh-client)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need_pkgs+=(busybox-static)
[ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
[ -x /usr/sbin/haproxy ] || need_pkgs+=(haproxy)
have caddy || need_pkgs+=(caddy)
have promtool || need_pkgs+=(prometheus)
have prometheus-node-exporter || need_pkgs+=(prometheus-node-exporter)
have skopeo || need_pkgs+=(skopeo)
have htpasswd || need_pkgs+=(apache2-utils)
have openssl || need_pkgs+=(openssl)
have curl || need_pkgs+=(curl)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-parts: missing ${need_pkgs[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "setup-parts: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps Debian from starting the services itself; the tests start their own on free ports
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# The Docker engine: start one when none answers.
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "setup-parts: no Docker engine answers and we are not root" >&2; exit 1; fi
  mkdir -p /var/log
  echo "setup-parts: starting dockerd"
  nohup dockerd --iptables=false >/var/log/shipline-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup-parts: dockerd did not start; see /var/log/shipline-dockerd.log" >&2; tail -20 /var/log/shipline-dockerd.log >&2; exit 1; }
fi
echo "setup-parts: ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null) engine; $(docker-compose version --short 2>/dev/null || echo '?') compose v1)"
