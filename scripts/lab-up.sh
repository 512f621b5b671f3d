#!/usr/bin/env bash
# Bring up the lab: a simulated PMOVES fleet in local systemd containers, converged by the real
# playbooks/site.yml, then a request answered through the gateway. See docs/lab.md.
#
#   scripts/lab-up.sh                 everything (what `make lab` runs)
#   scripts/lab-up.sh --nodes         only create/start the containers (the `pmoves lab` command
#                                     then runs site.yml itself with a live progress view)
#   scripts/lab-up.sh --finish        only write artifacts/lab.json and ask the gateway
#   scripts/lab-up.sh --lab-json      only write artifacts/lab.json
#
# Hosts, classes and fixtures come from LAB_INVENTORY (default inventories/lab, whose pmoves_lab_*
# host variables name captured fixtures). Any other inventory (the seed fleets: inventories/pmoves,
# gpu-mesh, workstation, forge, homelab) runs unchanged under a generated overlay
# (.cache/lab/overlay, scripts/lab_fleet.py: connection, addresses, package sources, secrets only)
# with each host's hardware synthesised from its pmoves_hardware (contract 4b). Host H runs in
# container pmoves-lab-H (lab-X in pmoves-lab-X); every container, network and volume is named
# pmoves-lab*; scripts/lab-down.sh removes them all. One lab at a time.
# Environment: LAB_INVENTORY (the fleet), LAB_LIMIT (rerun site.yml with --limit on the running lab,
# nodes untouched), PMOVES_LAB_GATEWAY_PORT (loopback port of the gateway, default 14000),
# PMOVES_LAB_NATS_PORT (loopback port of the NATS hub, default 14222),
# PMOVES_LAB_IMAGE (default localhost/pmoves-molecule:bookworm-systemd), ANSIBLE_PLAYBOOK_ARGS
# (extra arguments for ansible-playbook, e.g. "-v").
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
VENV=${VENV:-$REPO/.venv}
PY=$VENV/bin/python
LAB_INVENTORY=${LAB_INVENTORY:-inventories/lab}
INVENTORY=$(cd "$REPO" && realpath -e "${LAB_INVENTORY%/}" 2>/dev/null) || { echo "lab: no inventory $LAB_INVENTORY" >&2; exit 1; }
INVENTORY_REL=$(realpath --relative-to="$REPO" "$INVENTORY")
ARTIFACTS=$REPO/artifacts
CACHE=$REPO/.cache/lab
OVERLAY=$CACHE/overlay
INVENTORY_JSON=$CACHE/inventory.json
LAB_LIMIT=${LAB_LIMIT:-}
NATS_PORT=${PMOVES_LAB_NATS_PORT:-14222}
NETWORK=pmoves-lab
IMAGE=${PMOVES_LAB_IMAGE:-localhost/pmoves-molecule:bookworm-systemd}
# Seed labs: the node image adds podman + podman-compose (the stand-in services run on the node's own,
# nested engine: the node container is privileged, its image store a volume) and wireguard-go.
NODE_IMAGE=${PMOVES_LAB_NODE_IMAGE:-localhost/pmoves-lab-node:bookworm-systemd}
GATEWAY_PORT=${PMOVES_LAB_GATEWAY_PORT:-14000}
GATEWAY_INNER_PORT=4000
OLLAMA_VERSION=${PMOVES_LAB_OLLAMA_VERSION:-0.30.10}
SYSROOT=/opt/pmoves-lab/sysroot
# The containers reach Debian's mirror but not PyPI: the hashed LiteLLM set (gateway) and nats-py
# (mesh agent) are downloaded once on the host into this wheelhouse (a download cache like the base
# image: lab-down.sh keeps it, `lab-down.sh --purge` removes it) and copied into the nodes.
WHEELHOUSE=$REPO/.cache/lab-wheelhouse
NODE_WHEELHOUSE=/opt/pmoves-lab/wheelhouse
# Requirements every pip install on a node gets in addition (see the file: a workaround for Debian's
# python 3.11.2), through [install] requirement in the node's /etc/pip.conf.
EXTRA_REQUIREMENTS=$REPO/inventories/lab/files/requirements-lab-extra.txt
# The containers have no NVIDIA driver, so the NVIDIA container runtime (nvidia-ctk) cannot be set
# up there; roles/nvidia_runtime is tested by its own molecule scenario. Set to "" to try it anyway.
# mesh and monitoring are skipped too (see inventories/lab/group_vars/all.yml): roles/mesh's pip
# task needs python3-packaging on the node, which the role does not install, and monitoring was not
# yet proven in the lab. Contract 4 needs the gateway, not the mesh.
SKIP_TAGS=${PMOVES_LAB_SKIP_TAGS-nvidia}
MODE=${1:-all}

log() { printf '\033[1mlab:\033[0m %s\n' "$*"; }
die() { printf 'lab: %s\n' "$*" >&2; exit 1; }

[[ -x $PY ]] || die "no $VENV: run 'make venv' first (make lab does it for you)"
command -v podman >/dev/null || die "podman is missing: run 'make system-deps'"

# The fleet's own inventory as ansible-inventory sees it (no overlay): scripts/lab_fleet.py reads it.
inventory_json() {
  mkdir -p "$CACHE"
  "$VENV/bin/ansible-inventory" -i "$INVENTORY" --list >"$INVENTORY_JSON.tmp" 2>"$CACHE/inventory.err" \
    || die "ansible-inventory -i $INVENTORY_REL failed: $(tail -3 "$CACHE/inventory.err")"
  mv "$INVENTORY_JSON.tmp" "$INVENTORY_JSON"
}

# host|container|class|ollama_port|publish_gateway|nats_hub|fixture|gpu_index, one line per host.
lab_hosts() {
  "$PY" scripts/lab_fleet.py hosts "$INVENTORY_JSON" | while IFS='|' read -r host container cls oport gw hub; do
    "$PY" - "$INVENTORY_JSON" "$host" <<'PY' | { read -r fixture index; printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$host" "$container" "$cls" "$oport" "$gw" "$hub" "$fixture" "$index"; }
import json, sys
v = json.load(open(sys.argv[1]))["_meta"]["hostvars"][sys.argv[2]]
print(v.get("pmoves_lab_fixture", "-"), v.get("pmoves_lab_gpu_index", "-"))
PY
  done
}

# Copy a fixture tree into a staging dir; with a GPU index keep only that GPU (one capture of a
# two-GPU workstation stands in for two single-GPU desktops).
stage_sysroot() {  # fixture gpu_index dest
  local fixture=$REPO/tests/fixtures/hardware/$1 index=${2#-} dest=$3
  [[ -d $fixture ]] || die "fixture $fixture is missing (inventories/lab pmoves_lab_fixture)"
  rm -rf "$dest"; mkdir -p "$dest"; cp -a "$fixture/." "$dest/"
  local csv=$dest/.fixture/nvidia-smi/query.csv
  if [[ -n $index && -f $csv ]]; then
    "$PY" - "$csv" "$index" "$dest" <<'PY'
import pathlib, shutil, sys
csv, keep, root = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
lines = [l for l in csv.read_text().splitlines() if l.strip()]
kept = [l for l in lines if l.split(",")[0].strip() == keep]
if not kept:
    sys.exit(f"GPU index {keep} is not in {csv}")
for line in lines:
    if line in kept:
        continue
    bus = line.split(",")[3].strip().lower()          # 00000000:08:00.0
    short = bus[4:] if len(bus.split(":")[0]) == 8 else bus
    for device in (root / "sys/bus/pci/devices").glob(f"{short[:-1]}*"):
        shutil.rmtree(device, ignore_errors=True)     # the other GPU and its audio function
# the one GPU left is index 0 on its own machine
fields = [f.strip() for f in kept[0].split(",")]
fields[0] = "0"
csv.write_text(", ".join(fields) + "\n")
PY
  fi
}

ensure_wheelhouse() {
  # The locks are complete (make locks): --no-deps, so pip downloads exactly them. The stamp names the
  # locks' content, so a changed lock fetches its new wheels (old ones stay, pip picks by hash).
  local req locks=(roles/gateway/files/requirements-litellm.txt roles/mesh/files/requirements-agent.txt "$EXTRA_REQUIREMENTS")
  local stamp
  stamp=.complete-$(cat "${locks[@]}" | sha256sum | cut -c1-16)
  [[ -f $WHEELHOUSE/$stamp ]] && return 0
  log "downloading the hashed LiteLLM and nats-py wheels into .cache/lab-wheelhouse (once per lock)"
  mkdir -p "$WHEELHOUSE"
  for req in "${locks[@]}"; do
    "$VENV/bin/pip" download -q --no-deps --require-hashes --only-binary=:all: -r "$req" -d "$WHEELHOUSE" \
      || die "pip download -r $req failed (needs PyPI on the host)"
  done
  rm -f "$WHEELHOUSE"/.complete*
  touch "$WHEELHOUSE/$stamp"
}

# Copy the wheels a node needs (all of them to the gateway node, nats-py to the others) and point
# pip at them: /etc/pip.conf = no index, find links in the node's wheelhouse (an air-gapped node).
push_wheelhouse() {  # container is_gateway
  local stamp
  stamp=$( { cd "$WHEELHOUSE" && ls; cat "$EXTRA_REQUIREMENTS"; } | sha256sum | cut -c1-16)$2
  [[ $(podman exec "$1" cat "$NODE_WHEELHOUSE/.stamp" 2>/dev/null) == "$stamp" ]] && return 0
  podman exec "$1" rm -rf "$NODE_WHEELHOUSE"
  podman exec "$1" mkdir -p "$NODE_WHEELHOUSE"
  if [[ $2 == true ]]; then
    podman cp "$WHEELHOUSE/." "$1:$NODE_WHEELHOUSE/"
  else
    local wheel
    for wheel in "$WHEELHOUSE"/nats_py-*.whl "$WHEELHOUSE"/async_timeout-*.whl; do podman cp "$wheel" "$1:$NODE_WHEELHOUSE/"; done
  fi
  podman cp "$EXTRA_REQUIREMENTS" "$1:$NODE_WHEELHOUSE/requirements-lab-extra.txt"
  printf '# pmoves lab: the node has no PyPI; pip installs from the wheelhouse scripts/lab-up.sh copied here.\n[global]\nno-index = true\nfind-links = %s\n[install]\nrequirement = %s/requirements-lab-extra.txt\n' \
    "$NODE_WHEELHOUSE" "$NODE_WHEELHOUSE" | podman exec -i "$1" sh -c 'cat > /etc/pip.conf'
  printf '%s' "$stamp" | podman exec -i "$1" sh -c "cat > $NODE_WHEELHOUSE/.stamp"
}

# Stand-ins for the seed services' images (contract 4b "image stand-ins"): for every image the
# inventory's services name, a tiny image from the host's busybox (tests/doubles/standin) tagged with
# that very name, serving the services' container ports and health paths. Saved into one archive that
# each node's own podman loads, so the node's compose engine finds the image and never pulls.
STANDINS=$CACHE/standins.tar
build_standins() {
  local lines image ports paths work lib www
  # The inventory too: images of the user compose files its hosts name (pmoves_compose_user_files).
  lines=$("$PY" scripts/lab_fleet.py standins "$INVENTORY_JSON" "$INVENTORY") || die "stand-in list failed"
  [[ -n $lines ]] || { rm -f "$STANDINS"; return 0; }
  command -v busybox >/dev/null || die "the stand-in images need busybox on this host (apt-get install busybox)"
  work=$(mktemp -d "$CACHE/standin.XXXXXX")
  mkdir -p "$work/root/bin" "$work/root/www"
  cp "$(command -v busybox)" "$work/root/bin/busybox"
  for lib in $(ldd "$(command -v busybox)" 2>/dev/null | grep -o '/[^ ]*\.so[^ ]*'); do
    mkdir -p "$work/root$(dirname "$lib")"; cp -L "$lib" "$work/root$lib"
  done
  cp tests/doubles/standin/standin.sh "$work/root/standin"
  local images=()
  while IFS='|' read -r image ports paths; do
    www=$work/root/www
    rm -rf "$www"; mkdir -p "$www"
    printf 'pmoves stand-in %s\n' "$image" >"$www/index.html"
    for path in $paths; do
      path=${path%/}; [[ -z $path ]] && continue
      mkdir -p "$www$path"; printf 'ok\n' >"$www$path/index.html"
    done
    tar -C "$work/root" -c . | podman import --change 'ENTRYPOINT ["/standin"]' --change 'CMD []' \
      --change "ENV STANDIN_PORTS=$ports" --change "ENV STANDIN_IMAGE=$image" \
      --change 'LABEL io.pmoves.lab.standin=1' - "$image" >/dev/null
    images+=("$image")
  done <<<"$lines"
  rm -rf "$work" "$STANDINS"
  podman save -q -m -o "$STANDINS" "${images[@]}" >/dev/null
  log "stand-in images for ${#images[@]} seed images (tests/doubles/standin)"
}

push_standins() {  # container
  [[ -f $STANDINS ]] || return 0
  local stamp
  stamp=$(sha256sum <"$STANDINS" | cut -c1-16)
  [[ $(podman exec "$1" cat /opt/pmoves-lab/standins.stamp 2>/dev/null) == "$stamp" ]] && return 0
  podman cp "$STANDINS" "$1:/opt/pmoves-lab/standins.tar"
  podman exec "$1" podman load -q -i /opt/pmoves-lab/standins.tar >/dev/null
  podman exec "$1" rm -f /opt/pmoves-lab/standins.tar
  printf '%s' "$stamp" | podman exec -i "$1" sh -c 'cat > /opt/pmoves-lab/standins.stamp'
}

# Forge nodes: the trtllm-build TEST DOUBLE and a TEST DOUBLE checkpoint in each engine's
# checkpoint_dir (the node's models are not ours to download), as roles/forge's molecule scenario does.
push_forge_doubles() {  # host container
  local line dirs dir
  line=$(grep "^$1|" "$CACHE/forge-hosts" 2>/dev/null || true)
  [[ -n $line ]] || return 0
  dirs=${line#*|}
  podman cp tests/doubles/trtllm/trtllm-build "$2:/usr/local/bin/trtllm-build"
  podman exec "$2" chmod 0755 /usr/local/bin/trtllm-build
  for dir in $dirs; do
    podman exec "$2" sh -c "[ -f '$dir/config.json' ] || { mkdir -p '$dir' && printf '%s' '{\"architecture\": \"LlamaForCausalLM\", \"dtype\": \"float16\", \"pmoves_lab\": \"TEST DOUBLE checkpoint\"}' > '$dir/config.json' && printf weights > '$dir/rank0.safetensors'; }"
  done
}

# Every systemd container takes inotify instances from the host's per-user budget (rootful podman:
# all are uid 0). Debian's default fs.inotify.max_user_instances=128 runs out at about 20 nodes: the
# 23-host homelab's 22nd container hung in "initializing" ("Failed to create inotify object: Too many
# open files"). Raise it (root) or say what to set, before any container starts.
ensure_inotify() {  # hosts
  local want=$((256 + 64 * $1)) watches=$((8192 * $1 + 65536)) have have_w
  have=$(cat /proc/sys/fs/inotify/max_user_instances)
  have_w=$(cat /proc/sys/fs/inotify/max_user_watches)
  ((have >= want && have_w >= watches)) && return 0
  if [[ $(id -u) == 0 ]]; then
    ((have < want)) && { log "fs.inotify.max_user_instances $have -> $want ($1 systemd nodes)"; sysctl -qw "fs.inotify.max_user_instances=$want"; }
    ((have_w < watches)) && { log "fs.inotify.max_user_watches $have_w -> $watches"; sysctl -qw "fs.inotify.max_user_watches=$watches"; }
    return 0
  fi
  die "$1 systemd nodes need fs.inotify.max_user_instances >= $want (now $have) and max_user_watches >= $watches (now $have_w): run 'sudo sysctl -w fs.inotify.max_user_instances=$want fs.inotify.max_user_watches=$watches'"
}

container_state() { podman container inspect --format '{{.State.Status}}' "$1" 2>/dev/null || echo missing; }

wait_systemd() {  # container
  local state
  for _ in $(seq 1 60); do
    state=$(podman exec "$1" systemctl is-system-running 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] && return 0
    sleep 1
  done
  die "$1: systemd did not come up (state: ${state:-unknown}); see 'podman logs $1'"
}

up_nodes() {
  local node_args=()
  if [[ $INVENTORY == "$REPO/inventories/lab" ]]; then
    log "base image $IMAGE"
    if ! podman image exists "$IMAGE"; then tests/images/build.sh; fi
  else
    IMAGE=$NODE_IMAGE
    tests/images/build-lab-node.sh
    node_args=(--privileged)
    build_standins
  fi
  "$PY" scripts/lab_fleet.py forge "$INVENTORY_JSON" >"$CACHE/forge-hosts"
  mkdir -p "$ARTIFACTS" "$CACHE"
  ensure_wheelhouse
  if [[ ! -f $CACHE/ollama-release/sha256sum.txt ]]; then
    log "packaging the Ollama TEST DOUBLE $OLLAMA_VERSION as a release in .cache/lab/ollama-release"
    tests/doubles/ollama_emulator/build_release.sh "$OLLAMA_VERSION" "$CACHE/ollama-release" >/dev/null
  fi
  if [[ ! -s $ARTIFACTS/lab-api-key ]]; then
    (umask 077; "$PY" -c 'import secrets; print("sk-lab-" + secrets.token_urlsafe(24), end="")' >"$ARTIFACTS/lab-api-key")
  fi
  # the lab's read-only NATS observer (lab.json "nats_observer"; inventories/lab and the overlay read it)
  if [[ ! -s $ARTIFACTS/lab-nats-observer ]]; then
    (umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(24), end="")' >"$ARTIFACTS/lab-nats-observer")
  fi
  podman network exists "$NETWORK" || podman network create --label io.pmoves.lab=1 "$NETWORK" >/dev/null

  local host cls fixture index oport gw hub name state
  ensure_inotify "$("$PY" scripts/lab_fleet.py hosts "$INVENTORY_JSON" | grep -c .)"
  while IFS='|' read -r host name cls oport gw hub fixture index; do
    state=$(container_state "$name")
    if [[ $state == missing ]]; then
      local publish=() storage_args=()
      # privileged seed-lab nodes run their own podman: its storage on a volume, not the overlay
      ((${#node_args[@]})) && storage_args=(-v "$name-containers:/var/lib/containers")
      [[ $oport != None ]] && publish+=(-p "127.0.0.1:$oport:11434")
      [[ $gw == true ]] && publish+=(-p "127.0.0.1:$GATEWAY_PORT:$GATEWAY_INNER_PORT")
      [[ $hub == true ]] && publish+=(-p "127.0.0.1:$NATS_PORT:4222")
      log "create $name ($cls, $( [[ $fixture == - ]] && echo "hardware from pmoves_hardware" || echo "fixture $fixture${index#-}"))"
      podman volume exists "$name-models" || podman volume create --label io.pmoves.lab=1 "$name-models" >/dev/null
      podman run -d --name "$name" --hostname "$host" --network "$NETWORK" --network-alias "$host" \
        --systemd=always --label io.pmoves.lab=1 --label "io.pmoves.lab.host=$host" \
        --label "io.pmoves.lab.inventory=$INVENTORY_REL" \
        -v "$name-models:/usr/share/ollama/.ollama/models" "${publish[@]}" "${node_args[@]}" \
        "${storage_args[@]}" \
        "$IMAGE" /sbin/init >/dev/null
    elif [[ $state != running ]]; then
      log "start $name (was $state)"
      podman start "$name" >/dev/null
    fi
    wait_systemd "$name"
    push_wheelhouse "$name" "$gw"
    ((${#node_args[@]})) && push_standins "$name"
    push_forge_doubles "$host" "$name"
    # Hardware: the captured tree the host names, or one synthesised from its pmoves_hardware; and
    # the TEST DOUBLE tools that answer from it.
    if [[ $fixture == - ]]; then
      "$PY" scripts/lab_fleet.py sysroot "$INVENTORY_JSON" "$host" tests/fixtures/hardware "$CACHE/sysroot-$host" >/dev/null
    else
      stage_sysroot "$fixture" "$index" "$CACHE/sysroot-$host"
    fi
    podman exec "$name" rm -rf "$SYSROOT"
    podman exec "$name" mkdir -p "$SYSROOT"
    podman cp "$CACHE/sysroot-$host/." "$name:$SYSROOT/"
    # The doubles live in /opt/pmoves-lab/bin; /usr/local/bin/<tool> wrappers point them at the
    # node's fixture for every caller (roles too), not only hardware_facts.
    podman exec "$name" mkdir -p /opt/pmoves-lab/bin
    # sysctl / system_profiler: a host declaring Apple silicon (its sysroot carries the Mac's answers);
    # the sysctl wrapper hands every Linux name to the node's own sysctl.
    # jetson_clocks: every Jetson (its fixture has nvpmodel answers) has it; the double records calls only.
    for tool in nvidia-smi nvpmodel sysctl system_profiler jetson_clocks; do
      fixture_tool=$tool
      [[ $tool == jetson_clocks ]] && fixture_tool=nvpmodel
      if [[ -d $CACHE/sysroot-$host/.fixture/$fixture_tool ]]; then
        podman cp tests/doubles/bin/_fixture_lib.sh "$name:/opt/pmoves-lab/bin/_fixture_lib.sh"
        podman cp "tests/doubles/bin/$tool" "$name:/opt/pmoves-lab/bin/$tool"
        "$PY" scripts/lab_fleet.py wrapper "$tool" "$SYSROOT" |
          podman exec -i "$name" sh -c "cat > /usr/local/bin/$tool && chmod 0755 /usr/local/bin/$tool"
      fi
    done
  done < <(lab_hosts)
}

# Inventories other than inventories/lab run under the generated overlay (contract 4b).
inventory_args() {
  if [[ $INVENTORY == "$REPO/inventories/lab" ]]; then
    printf '%s\n' -i "$INVENTORY"
  else
    printf '%s\n' -i "$INVENTORY" -i "$OVERLAY"
  fi
}

converge() {
  local args=()
  mapfile -t args < <(inventory_args)
  [[ -n $LAB_LIMIT ]] && args+=(--limit "$LAB_LIMIT")
  # A seed lab keeps its facts apart (.cache/lab/facts, removed by lab-down): the fleet's real runs
  # must never read the lab's synthesised hardware from the shared cache.
  [[ $INVENTORY != "$REPO/inventories/lab" ]] && export ANSIBLE_CACHE_PLUGIN_CONNECTION=$CACHE/facts
  log "converge: ansible-playbook playbooks/site.yml ${args[*]/#$REPO\//}"
  # shellcheck disable=SC2086
  ANSIBLE_CALLBACKS_ENABLED=${ANSIBLE_CALLBACKS_ENABLED:-ansible.posix.timer,pmoves.fleet.pmoves_run} \
    "$VENV/bin/ansible-playbook" playbooks/site.yml "${args[@]}" -e "pmoves_artifacts_dir=$ARTIFACTS" \
    --skip-tags "$SKIP_TAGS" ${ANSIBLE_PLAYBOOK_ARGS:-}
}

write_lab_json() {
  "$PY" scripts/lab_fleet.py lab-json "$INVENTORY_JSON" "$ARTIFACTS" "$GATEWAY_PORT" "$NATS_PORT" "$INVENTORY_REL"
  log "wrote artifacts/lab.json"
}

# One lab at a time: refuse to bring up a fleet while another fleet's containers exist.
check_one_lab() {
  local other
  other=$(podman ps -a --filter label=io.pmoves.lab=1 --format '{{index .Labels "io.pmoves.lab.inventory"}}' 2>/dev/null \
          | sed 's/<no value>/inventories\/lab/' | sort -u | grep -vx "$INVENTORY_REL" | head -1 || true)
  [[ -z $other ]] || die "the lab of $other is running: 'make lab-down' first (labs of different fleets may not run at the same time)"
}

ask_gateway() {
  local model key answer gateways
  gateways=$("$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1])).get("roles", {}).get("gateway") or []))' \
             "$ARTIFACTS/lab.json" 2>/dev/null || echo 1)
  if [[ $gateways == 0 ]]; then
    # A fleet whose inventory names no gateway host (seed 001's Forge SKUs: each serves its own engine and Ollama)
    # has no gateway to ask; the lab tests ask each node's Ollama. Say so instead of failing a converged lab.
    log "this fleet has no gateway host (no 'gateway' group in $INVENTORY_REL): not asking a gateway"
    return 0
  fi
  model=$("$PY" -c '
import json
plan = json.load(open("artifacts/plan.json"))
chat = [m for m, e in sorted(plan.get("models", {}).items()) if e.get("placed") and e.get("kind") != "embedding"]
print(chat[0] if chat else "")' 2>/dev/null || true)
  if [[ -z $model ]]; then
    # A fleet without Ollama models (seed 004's workstation: its LLM runs as a compose service) has nothing to ask
    # the gateway; its services are checked by the lab tests. Say so instead of failing a converged lab.
    log "no chat model is placed in this fleet (artifacts/plan.json): not asking the gateway"
    return 0
  fi
  key=$(cat "$ARTIFACTS/lab-api-key")
  log "asking the gateway (http://127.0.0.1:$GATEWAY_PORT) with model $model"
  for _ in $(seq 1 30); do
    if answer=$(curl -sf --max-time 30 "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" \
        -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"model\": \"$model\", \"messages\": [{\"role\": \"user\", \"content\": \"Say hello to the lab.\"}]}"); then
      printf '%s' "$answer" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("gateway answered:", r["choices"][0]["message"]["content"])'
      return 0
    fi
    sleep 2
  done
  die "the gateway did not answer on 127.0.0.1:$GATEWAY_PORT (is roles/gateway applied? see artifacts/report.html)"
}

inventory_json
if [[ $INVENTORY != "$REPO/inventories/lab" ]]; then
  mkdir -p "$ARTIFACTS"
  "$PY" scripts/lab_fleet.py overlay "$INVENTORY_JSON" "$OVERLAY" "$REPO"
fi

case $MODE in
  --nodes) check_one_lab; up_nodes ;;
  --finish) write_lab_json; ask_gateway ;;
  --lab-json) write_lab_json ;;
  all)
    start=$(date +%s)
    if [[ -n $LAB_LIMIT ]]; then
      log "LAB_LIMIT=$LAB_LIMIT: site.yml limited to it on the running lab (containers untouched)"
    else
      check_one_lab
      up_nodes
    fi
    rc=0; converge || rc=$?
    write_lab_json
    [[ $rc == 0 ]] || die "site.yml failed (rc=$rc); lab.json and artifacts/report.html show how far it got"
    ask_gateway
    log "up in $(( $(date +%s) - start )) s: report artifacts/report.html, lab artifacts/lab.json, 'make lab-down' removes it"
    ;;
  *) die "usage: $0 [--nodes|--finish|--lab-json]" ;;
esac
