#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0
"""Documentation of pmoves.fleet.fleet_plan; the work is done by the action plugin of the same name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_plan
short_description: Plan which Ollama models and services go to which host and GPU of the fleet
description:
  - Runs on the controller (action plugin). Reads every inventory host's C(pmoves_hardware) (the
    fact from M(pmoves.fleet.hardware_facts) when cached, else the one declared in inventory), the
    host's class group (C(gpu_nodes), C(edge_nodes), C(apu_nodes), C(npu_nodes), C(cpu_nodes)), the
    model and service catalogs and the strategy, and writes C(plan.json), C(plan.md) and
    C(plan.html) into O(artifacts_dir).
  - The inventory class group wins over C(pmoves_hardware.node_class); a disagreement is a warning.
    Hosts without any C(pmoves_hardware) are named in the warnings and get nothing.
  - An inventory without any host fails the task (naming the inventory sources) instead of writing
    an empty plan.
  - Same inputs give a byte-identical C(plan.json). With O(sticky), placements of the previous
    C(plan.json) in O(artifacts_dir) that are still valid are kept, so adding a node or a model
    moves as few placements as possible (C(moved) in the plan).
  - Per-host variables read from hostvars (fleet_schema.HOST_VARS) - C(pmoves_models_allowed) (false - the host
    takes no models), C(pmoves_vram_reserve_mb), C(pmoves_cpu_ram_share), C(pmoves_unified_memory_share), and the
    inputs of the Ollama listen decision C(pmoves_ollama_port), C(pmoves_ollama_serve_network),
    C(pmoves_ollama_bind_all), C(pmoves_listen_address), C(pmoves_mesh_address), C(pmoves_wireguard_enabled),
    C(pmoves_wireguard_address), C(ansible_host). Every group a host is in is recorded (C(fleet.groups)).
  - Decides once, per node, where its Ollama listens and who uses it (C(nodes[host].ollama)) - loopback unless
    another host uses it (the gateway, a C(uses_ollama) service), then the host's mesh or declared address - and
    fails with the reason when the inventory makes that impossible.
  - The catalogs, strategies and defaults are those of plugins/module_utils/fleet_schema.py; see docs/planner.md
    for the placement rules and docs/inventory.md for the catalog fields.
version_added: "0.1.0"
author:
  - pmoves.fleet developers (@pmoves)
options:
  artifacts_dir:
    description: Directory for plan.json and the reports; created when missing.
    type: path
    required: true
  models:
    description:
      - Model catalog (C(pmoves_models)), entries C({name, replicas, pin, vram_mb, context, parallel,
        kv_cache_type, cpu_ok, alias, aliases, kind, params_b, keep_alive}) (fleet_schema.MODEL_FIELDS). A bare
        string is a model name with one replica.
      - C(vram_mb) when given is final; otherwise it is estimated from the built-in table of Ollama
        library models (weights at the tag's quantisation + KV cache for C(context) x C(parallel) + overhead).
    type: list
    elements: raw
    default: []
  services:
    description:
      - Service catalog (C(pmoves_services)), entries C({name, vram_mb, vram_min_mb, gpu, classes,
        primary, fallback, replicas, gpu_index, latency_critical, isolate, uses_ollama, serves}) plus the
        compose keys the roles read (fleet_schema.SERVICE_FIELDS), copied into the node's plan entry.
      - C(vram_min_mb) below C(vram_mb) makes the budget adjustable (seed 004 auto-adjust).
    type: list
    elements: raw
    default: []
  strategy:
    description:
      - C(pmoves_strategy). A GPU strategy (services over the GPUs of one host) or a model strategy
        (models across hosts); the other one comes from O(gpu_strategy) / O(model_strategy).
    type: str
    default: balanced
    choices: [manual, vram_based, latency_optimized, isolation_first, balanced, spread, binpack]
  gpu_strategy:
    description: GPU strategy when O(strategy) is a model strategy (default C(vram_based)).
    type: str
    choices: [manual, vram_based, latency_optimized, isolation_first, balanced]
  model_strategy:
    description: Model strategy when O(strategy) is a GPU strategy (default C(spread)).
    type: str
    choices: [spread, binpack]
  vram_reserve_mb:
    description: VRAM kept free on every discrete GPU (capped at 25 % of the GPU).
    type: int
    default: 512
  cpu_ram_share:
    description: Share of RAM a CPU or NPU node offers to C(cpu_ok) models.
    type: float
    default: 0.5
  unified_memory_share:
    description: Share of RAM used by a unified-memory node whose pmoves_hardware lists no GPU entry.
    type: float
    default: 0.75
  class_rules:
    description: Apply the size rules (70B+ to the biggest node, 1-8B to edge nodes, embeddings to CPU nodes).
    type: bool
    default: true
  sticky:
    description: Keep still-valid placements of the previous plan.json in O(artifacts_dir).
    type: bool
    default: true
  pin_fallback:
    description: A pin that cannot hold still gets its replica on another host (the pin failure is a warning).
    type: bool
    default: true
  offload_ram_share:
    description:
      - Share of RAM a discrete-GPU node lets Ollama spill layers into when a model exceeds the VRAM left by services
        and resident models (a host's C(pmoves_ollama_offload_mb) wins; unified-memory and CPU nodes spill nothing).
    type: float
    default: 0.75
  ollama_port:
    description: Ollama port of hosts that set no C(pmoves_ollama_port) (C(pmoves_ollama_port) of pmoves.fleet.common).
    type: int
    default: 11434
  gateway_enabled:
    description: C(pmoves_gateway_enabled); unset - true when the inventory declares a C(gateway) group.
    type: bool
  wireguard_network:
    description: WireGuard mesh network the members' addresses come from (C(pmoves_wireguard_network)).
    type: str
    default: 10.77.0.0/24
  model_share:
    description:
      - C(pmoves_model_share) - a model placed on several nodes is pulled from the registry once, by its seed node
        (among the holders with a non-loopback address - a private address before a public IP, then one whose Ollama
        serves the network, then by name), and the
        other nodes copy it from the seed's read-only model share over the LAN (blobs verified by sha256; a failed
        copy falls back to a registry pull). C(false) - every node pulls from the registry.
    type: bool
    default: true
  model_share_port:
    description: TCP port of the seed nodes' model share (C(pmoves_model_share_port) of pmoves.fleet.common).
    type: int
    default: 11435
  report:
    description: Also write plan.md and plan.html next to plan.json.
    type: bool
    default: true
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: Plans and reports the result; writes nothing.
  diff_mode:
    support: full
    details: Shows placements of the previous plan against the new one.
  idempotent:
    support: full
    details: An unchanged fleet and catalog give the same plan.json, reported as not changed.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
    details: Runs on the controller only (an action plugin); no host is contacted.
"""

EXAMPLES = r"""
- name: Plan | place models and services
  pmoves.fleet.fleet_plan:
    artifacts_dir: "{{ pmoves_artifacts_dir }}"
    models: "{{ pmoves_models | default([]) }}"
    services: "{{ pmoves_services | default([]) }}"
    strategy: "{{ pmoves_strategy | default(omit) }}"

- name: Plan | fewest nodes, services by VRAM
  pmoves.fleet.fleet_plan:
    artifacts_dir: artifacts
    models:
      - {name: "qwen2.5:32b", replicas: 2}
      - {name: nomic-embed-text, replicas: 3, cpu_ok: true}
    strategy: binpack
    gpu_strategy: vram_based
"""

RETURN = r"""
path:
  description: Path of the plan.json written (or that would be written in check mode).
  returned: always
  type: str
plan:
  description: The plan (contract 2 of DESIGN.md plus explanations).
  returned: always
  type: dict
  contains:
    schema:
      description: Schema version, 1.
      type: int
    strategy:
      description: The strategy asked for.
      type: str
    nodes:
      description:
        - Per host - class, vram_total_mb, vram_planned_mb (the peak - services, resident models and the max_loaded
          largest on-demand models), models, services (name, gpu, gpu_index, gpu_uuid, vram_mb, why, the compose
          keys), gpus.
        - Capacity (contract 2) - reserved_mb, services_mb, resident, on_demand, peak_mb, peak_models, offload_mb,
          max_loaded, disk (total_mb, used_mb, free_mb), ollama_env (context_length, num_parallel, kv_cache_type) and
          placements (per model - vram_mb when loaded here, disk_mb, resident, spill_mb, pinned, why).
        - C(ollama) - runs, network, listen, port, address, address_source, url (for other hosts), local_url,
          client_url (the Ollama this node's clients use), consumers, models (C({name, aliases, keep_alive, source})),
          gpu_uuids, model_share (serve, models, listen, port, url - the read-only share of this node's model store
          that peers copy the models it seeds from).
        - C(source) of a model entry - C({kind=registry}) (pull it) or C({kind=peer, node, url}) (copy it from the
          seed's model share, falling back to a pull).
      type: dict
    models:
      description: Per normalised model name - wanted, placed hosts, vram_mb, vram_by_host, why per host, alias (as
        written), aliases (normalised), kind, keep_alive, resident, disk_mb, primary, fallback, seed (the host that pulls it from the
        registry for the others, null when every holder pulls).
      type: dict
    fleet:
      description: Membership from the inventory - hosts, groups, gateway (enabled, hosts), wireguard (network, hosts,
        addresses), ollama_port.
      type: dict
    unplaced:
      description: One entry per model short of replicas - model, missing, reason.
      type: list
      elements: dict
    warnings:
      description: Everything a user should know (failed pins, full nodes, non-Ollama entries, ...).
      type: list
      elements: str
    moved:
      description: Placements of the previous plan that moved.
      type: int
summary:
  description: Counts - nodes, models, replicas_wanted, replicas_placed, unplaced, warnings, moved.
  returned: always
  type: dict
plan_warnings:
  description: The plan's warnings.
  returned: always
  type: list
  elements: str
"""
