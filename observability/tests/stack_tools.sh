# Shared helpers for scripts/test.d/2*.sh and 3*.sh (sourced, not run).

# Installs Debian packages whose command is missing, once: ensure_cmd <command> <package>...
ensure_cmd() {
  local cmd=$1
  shift
  if command -v "$cmd" >/dev/null 2>&1; then
    return 0
  fi
  echo "installing $* (for $cmd)"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  if [[ -z ${TRACEHOP_APT_UPDATED:-} ]]; then
    "${sudo[@]}" apt-get update -qq >/dev/null
    export TRACEHOP_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  command -v "$cmd" >/dev/null 2>&1 || { echo "error: $cmd still missing after installing $*" >&2; return 1; }
}

# Debian's python3 with PyYAML (python3-yaml, a dependency of docker-compose anyway). The
# checks use the system interpreter so a pyenv or venv python3 first on PATH does not matter.
ensure_python_yaml() {
  ensure_cmd /usr/bin/python3 python3
  if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    [[ -n ${TRACEHOP_APT_UPDATED:-} ]] || { "${sudo[@]}" apt-get update -qq >/dev/null; export TRACEHOP_APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
  fi
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  free_ports 1
}

# free_ports <n>: n distinct free ports on 127.0.0.1, space-separated, from below the kernel's
# ephemeral range (32768 and up), where no client socket can take one before its server binds it.
# All n are held open until every one is chosen, so one call never hands out a port twice.
free_ports() {
  /usr/bin/python3 -c '
import random, socket, sys
held = []
start = random.randrange(20000, 32000)
for port in [*range(start, 32000), *range(20000, start)]:
    if len(held) == int(sys.argv[1]):
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
print(" ".join(str(s.getsockname()[1]) for s in held))' "$1"
}
